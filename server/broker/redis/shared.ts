/**
 * What the two Redis drivers share: the websocket-redis name layout, interest (retain/release) turned
 * into SUBSCRIBE/UNSUBSCRIBE that are retried until Redis takes them, the delivery of what Redis
 * sends, and the counters. Each driver (single.ts, cluster.ts) adds how it publishes and what it
 * guarantees.
 *
 * Layout (docs/protocol.md): `news` travels on `broadcast:news`, `user:john:chat` and
 * `session:abc:chat` on their own names, all under `<prefix>:` when a prefix is set. The payload is the
 * message's JSON text, so `redis-cli PUBLISH broadcast:news '{"x":1}'` reaches every subscriber; a
 * payload that is not JSON (from another program) arrives as a JSON string.
 *
 * Every Redis error is counted, none is thrown at the endpoints: the broker keeps this instance working
 * while Redis is away and says so in `state()` (hence `/health`) and `counters()` (hence `/stats`).
 */
import { Throttle, type Logger } from '../../log.js';
import type { Cluster, Redis } from 'ioredis';
import { isJsonText, redisName, type ChannelRef, type Position } from '../../protocol/index.js';
import { openEnvelope } from './kept.js';
import type { Broker, DeliverHandler } from '../types.js';

/** Options of both Redis drivers. */
export interface RedisBrokerOptions {
  /** Namespace before every Redis name (`<prefix>:broadcast:news`); empty for none. */
  prefix: string;
  /** Where outages, reconnects and errors are logged (throttled: an outage's error storm costs a line per 10 s). */
  log: Logger;
  /** Seconds the last message of a channel is kept in Redis (`SET key value EX S`); 0 keeps nothing. */
  expire: number;
}

/** Connection options both drivers use for every client. */
export const FAIL_FAST = {
  // Fail fast while Redis is away: a publish must not wait in a queue; it is delivered locally instead.
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  retryStrategy: (times: number): number => Math.min(100 * times, 2000),
  lazyConnect: true,
} as const;

/**
 * The longest a `subscribed` ack waits for Redis to confirm the instance's subscription: past it
 * (Redis slow or refusing) the ack goes, and the subscription keeps being retried.
 */
export const SUBSCRIBE_WAIT_MS = 1000;

/** ioredis statuses of a client that lost its connection (as opposed to one still making its first). */
const OUTAGE_STATUSES = new Set(['reconnecting', 'close', 'end']);

/** How long a channel whose SUBSCRIBE failed waits before it is subscribed again. */
export const RESUBSCRIBE_MS = 1000;

/** The broker's own counters, each a line of `/stats` `broker` and of `/metrics`. */
export interface RedisCounters {
  /** Messages published while Redis could not carry them: delivered here only, lost to the other instances. */
  lost_in_outage: number;
  /** Times the connection to Redis (or a cluster shard) was lost. */
  outages: number;
  /** Error events of the Redis clients (connection refused, reset, ...). */
  redis_errors: number;
  /** SUBSCRIBE / SSUBSCRIBE calls Redis refused or that failed; each is retried. */
  subscribe_errors: number;
  /** UNSUBSCRIBE / SUNSUBSCRIBE calls that failed (the channel's messages are then ignored). */
  unsubscribe_errors: number;
  /** Cache reads (GET) that failed; the subscriber got no cached message. */
  cache_errors: number;
  /** Publish calls that failed after they were sent; their messages were delivered here only (in lost_in_outage). */
  publish_errors: number;
  /** Shutdown fences that failed: delivery of earlier publishes here could not be confirmed. */
  flush_errors: number;
}

/** The log line of each kind of failure. */
const PROBLEMS: Record<Exclude<keyof RedisCounters, 'lost_in_outage' | 'outages'>, string> = {
  redis_errors: 'redis client error',
  subscribe_errors: 'redis refused a subscribe; retrying',
  unsubscribe_errors: 'redis unsubscribe failed; the channel is ignored here',
  cache_errors: 'cache read failed; the subscriber got no cached message',
  publish_errors: 'publish failed in redis; delivered on this instance only',
  flush_errors: 'shutdown fence failed: delivery of earlier publishes here is not confirmed',
};

export abstract class RedisBrokerBase implements Broker {
  abstract readonly kind: string;
  protected readonly counts: RedisCounters = {
    lost_in_outage: 0,
    outages: 0,
    redis_errors: 0,
    subscribe_errors: 0,
    unsubscribe_errors: 0,
    cache_errors: 0,
    publish_errors: 0,
    flush_errors: 0,
  };
  protected deliver: DeliverHandler = () => {};
  /** Redis name -> our channel, for every channel with local interest. */
  protected readonly retained = new Map<string, string>();
  /** Redis names whose subscription Redis confirmed (since the subscriber's last connect). */
  protected readonly confirmed = new Set<string>();
  /** Redis names whose SUBSCRIBE is not confirmed yet, and the acks waiting for it. */
  private readonly waiting = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  private resubscribeTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly throttle = new Throttle();

  constructor(protected readonly options: RedisBrokerOptions) {}

  /** The client that publishes and reads the cache. */
  protected abstract readonly pub: Redis | Cluster;
  /** The client that subscribes. */
  protected abstract readonly sub: Redis | Cluster;

  abstract publish(channel: ChannelRef, messageJson: string): Promise<Position | undefined>;
  abstract flush(): Promise<void>;
  abstract fence(): Promise<void>;
  /** Subscribes names in Redis (SUBSCRIBE or SSUBSCRIBE); rejects when Redis refuses. */
  protected abstract subscribeInRedis(names: string[]): Promise<unknown>;
  /** Unsubscribes a name in Redis. */
  protected abstract unsubscribeInRedis(name: string): Promise<unknown>;
  /** Names one SUBSCRIBE call may carry together. */
  protected abstract subscribeBatches(names: string[]): string[][];

  /** Counts a failure in `counter` and logs it, at most once per 10 s per kind. */
  protected problem(counter: Exclude<keyof RedisCounters, 'lost_in_outage' | 'outages'>, err?: unknown): void {
    this.counts[counter]++;
    this.throttle.pass(counter, (suppressed) =>
      this.options.log.warn({ counter, count: this.counts[counter], suppressed, err: err instanceof Error ? err.message : err }, PROBLEMS[counter]),
    );
  }

  /** Wires the events both clients share; call once the clients exist. */
  protected watchClients(): void {
    for (const client of [this.pub, this.sub]) client.on('error', (err) => this.problem('redis_errors', err));
    this.sub.on('ready', () => this.subscribeRetained());
    this.sub.on('close', () => this.confirmed.clear());
  }

  /** Starts connecting; returns at once, since the server must start even while Redis is down. */
  connect(): void {
    for (const client of [this.pub, this.sub]) void client.connect().catch(() => undefined);
  }

  onDeliver(handler: DeliverHandler): void {
    this.deliver = handler;
  }

  retain(channel: ChannelRef): void {
    const name = this.name(channel);
    this.retained.set(name, channel.name);
    if (this.sub.status === 'ready') void this.subscribe([name]);
  }

  subscribed(channel: ChannelRef): Promise<void> | null {
    const name = this.name(channel);
    // While Redis is away (after it was there) nothing can be waited for: the ack goes, as a publish is
    // acked then too. While the first connect is under way (a server just started) the ack waits.
    if (this.confirmed.has(name) || !this.retained.has(name) || OUTAGE_STATUSES.has(this.sub.status)) return null;
    let wait = this.waiting.get(name);
    if (!wait) {
      let resolve!: () => void;
      const promise = new Promise<void>((done) => (resolve = done));
      const timer = setTimeout(() => this.stopWaiting(name), SUBSCRIBE_WAIT_MS);
      timer.unref();
      void promise.then(() => clearTimeout(timer));
      this.waiting.set(name, (wait = { promise, resolve }));
    }
    return wait.promise;
  }

  private stopWaiting(name: string): void {
    this.waiting.get(name)?.resolve();
    this.waiting.delete(name);
  }

  release(channel: ChannelRef): void {
    const name = this.name(channel);
    this.retained.delete(name);
    this.confirmed.delete(name);
    this.stopWaiting(name);
    if (this.sub.status === 'ready') void this.unsubscribeInRedis(name).catch(() => this.problem('unsubscribe_errors'));
  }

  async lastMessage(channel: ChannelRef): Promise<string | undefined> {
    if (this.options.expire <= 0 || this.pub.status !== 'ready') return undefined;
    try {
      return (await this.pub.get(this.name(channel))) ?? undefined;
    } catch {
      this.problem('cache_errors');
      return undefined;
    }
  }

  counters(): Record<string, number> {
    return {
      ...this.counts,
      channels_subscribed: this.retained.size,
      channels_unconfirmed: [...this.retained.keys()].filter((name) => !this.confirmed.has(name)).length,
    };
  }

  abstract state(): string;

  async close(): Promise<void> {
    this.closed = true;
    if (this.resubscribeTimer) clearTimeout(this.resubscribeTimer);
    for (const name of [...this.waiting.keys()]) this.stopWaiting(name);
    for (const client of [this.pub, this.sub]) client.disconnect();
  }

  /** Subscribes every retained channel not confirmed yet (after a connect, or a failed SUBSCRIBE). */
  private subscribeRetained(): void {
    const names = [...this.retained.keys()].filter((name) => !this.confirmed.has(name));
    for (const batch of this.subscribeBatches(names)) void this.subscribe(batch);
  }

  /**
   * Subscribes names, and counts and retries a refusal: a channel must not stay retained without a
   * Redis subscription (its messages from other instances would be lost without a trace).
   */
  private async subscribe(names: string[]): Promise<void> {
    try {
      await this.subscribeInRedis(names);
      for (const name of names) {
        if (this.retained.has(name)) this.confirmed.add(name);
        this.stopWaiting(name);
      }
    } catch {
      this.problem('subscribe_errors');
      if (this.closed || this.resubscribeTimer) return;
      this.resubscribeTimer = setTimeout(() => {
        this.resubscribeTimer = null;
        if (this.sub.status === 'ready') this.subscribeRetained();
      }, RESUBSCRIBE_MS).unref();
    }
  }

  /** A publish that Redis cannot carry: this instance's subscribers get it, the others lose it (counted). */
  protected deliverLocally(channel: string, messageJson: string): void {
    this.counts.lost_in_outage++;
    this.deliver(channel, messageJson);
  }

  /** The Redis pub/sub name (and cache key) of a channel, from what its parse found. */
  protected name(channel: ChannelRef): string {
    return redisName(channel.name, channel.facility, this.options.prefix);
  }

  /**
   * What Redis sent on a subscribed name: delivered to this instance's subscribers, with its history
   * position when it came in the history's envelope.
   */
  protected onMessage(name: string, payload: string): void {
    const channel = this.retained.get(name);
    if (channel === undefined) return;
    const kept = openEnvelope(payload);
    if (kept) return this.deliver(channel, kept.messageJson, kept.position);
    this.deliver(channel, isJsonText(payload) ? payload : JSON.stringify(payload));
  }
}
