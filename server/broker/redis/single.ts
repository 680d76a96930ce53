/**
 * The single-Redis driver (`--redis URL`): bridges every server instance through one Redis's pub/sub.
 *
 * Guarantees:
 * - Exactly once while Redis is up: a publish goes only to Redis, never straight to local subscribers;
 *   each instance subscribes once per channel it has local interest in and delivers what Redis sends
 *   it once.
 * - Order: the messages of one instance reach Redis in publish order on one connection, and Redis sends
 *   them to each subscribing instance in that order, so one publisher's messages on a channel arrive
 *   in order. Across a Redis outage a channel's order holds on this instance too (local delivery is
 *   synchronous and the failed batch's messages are delivered in order), not across instances.
 * - Outage: while Redis is unreachable every publish is delivered to this instance's subscribers only
 *   and counted in `lost_in_outage`; `publish` never rejects. ioredis reconnects by itself and the
 *   broker subscribes every retained channel again.
 * - Flush: resolves once Redis answered every earlier publish of this instance and then a PING on the
 *   subscriber connection: Redis answers that PING after it has sent this connection every message
 *   published (by any instance) before it, so they have all been delivered here.
 *
 * Publishing: everything published in one event-loop turn goes to Redis as one script call
 * (PUBLISH_SCRIPT: for each message, `SET name json EX S` when caching, then `PUBLISH name json`), in
 * order, on one connection. Subscribers, redis-cli among them, still see one Redis message per publish;
 * what is saved is the client side: one ioredis command per turn instead of one (with its promise and
 * garbage) per message, which was most of a publishing instance's CPU at 50,000 msg/s.
 *
 * With history (`--history`), the turn's script is KEPT_PUBLISH_SCRIPT (kept.ts): for
 * each message, the next offset of its channel, the entry in the channel's stream, then the PUBLISH, as
 * one atomic step, so every instance sees the same offsets; the payload then travels in an envelope
 * that carries offset and epoch (`#<offset>:<epoch>:<json>`), which every instance opens.
 */
import { randomBytes } from 'node:crypto';
import { redactUrl } from '../../log.js';
import { Redis } from 'ioredis';
import type { ChannelRef, Position } from '../../protocol/index.js';
import { historyKeys, KEPT_PUBLISH_SCRIPT } from './kept.js';
import { FAIL_FAST, RedisBrokerBase, type RedisBrokerOptions } from './shared.js';

/**
 * KEYS: the Redis names; ARGV: the payloads in the same order, then the cache's seconds (0: none).
 * Declaring the names as keys keeps the script valid where Redis checks keys (cluster, ACLs).
 */
const PUBLISH_SCRIPT = `
local expire = tonumber(ARGV[#KEYS + 1])
for i = 1, #KEYS do
  if expire > 0 then redis.call('SET', KEYS[i], ARGV[i], 'EX', expire) end
  redis.call('PUBLISH', KEYS[i], ARGV[i])
end
return #KEYS`;

/** Messages per script call; a longer turn is sent as several calls, back to back. */
const MAX_BATCH = 1000;

/**
 * What one event-loop turn published; `done` settles when Redis (or the local fallback) has it all.
 * With history, `positions` holds what the script gave each message (none for one delivered here only).
 */
interface Batch {
  channels: string[];
  names: string[];
  payloads: string[];
  positions: (Position | undefined)[];
  done: Promise<undefined>;
  settle: () => void;
}

type ScriptedRedis = Redis & {
  publishBatch(numKeys: number, ...args: (string | number)[]): Promise<number>;
  /** Each message's offset and epoch, in order (KEPT_PUBLISH_SCRIPT). */
  publishKept(numKeys: number, ...args: (string | number)[]): Promise<(number | string)[]>;
};

/** Options of {@link RedisBroker}. */
export interface SingleRedisOptions extends RedisBrokerOptions {
  /** `redis://host:port/db` of the Redis. */
  url: string;
  /** Keep each channel's last `size` messages for `ttlMs` in Redis, with offsets (`--history`); null for none. */
  history?: { size: number; ttlMs: number } | null;
  /** Milliseconds Redis may take to answer a probe before it counts as not answering (`--redis-timeout`). Default 2000. */
  timeoutMs?: number;
}

/** How often the publishing connection is probed with a PING while it is connected. */
const PROBE_INTERVAL_MS = 500;

export class RedisBroker extends RedisBrokerBase {
  readonly kind = 'redis';
  protected readonly pub: ScriptedRedis;
  protected readonly sub: Redis;
  /** Publishes of the current event-loop turn, sent when it ends. */
  private batch: Batch | null = null;
  /** Settles when the last batch sent so far was answered (batches are answered in order). */
  private lastBatch: Promise<undefined> = Promise.resolve(undefined);
  private wasReady = false;
  /**
   * Set while a PING has gone unanswered for longer than the timeout: Redis is connected but not
   * answering (a long script, a stalled host). It counts as an outage: /health 503, and publishes are
   * delivered here only (counted lost) instead of waiting behind Redis.
   */
  private stalled = false;
  /** When the probe now waiting was sent (ms), or null. */
  private probeSentAt: number | null = null;
  private readonly probe: NodeJS.Timeout;
  /** With `--history`: what the publish script keeps, and how long a channel's meta outlives its last message. */
  private readonly history: { size: number; ttlMs: number; metaTtlS: number } | null;

  constructor(options: SingleRedisOptions) {
    super(options);
    // A channel's epoch and counter outlive its last message by the history's TTL: then nothing of it is
    // kept, and its next message starts a new epoch. Anonymous channel names thus hold Redis for a TTL only.
    this.history = options.history ? { ...options.history, metaTtlS: Math.ceil(options.history.ttlMs / 1000) } : null;
    // Auto-pipelining is not needed: a turn's publishes are one script call already.
    this.pub = new Redis(options.url, { ...FAIL_FAST, connectionName: 'pubsub-server:pub' }) as ScriptedRedis;
    // EVALSHA, and EVAL once when Redis does not know the script (a fresh or restarted server).
    this.pub.defineCommand('publishBatch', { lua: PUBLISH_SCRIPT });
    this.pub.defineCommand('publishKept', { lua: KEPT_PUBLISH_SCRIPT });
    // The subscriber's channels are (re)subscribed by the base class on every 'ready': SUBSCRIBEs queued
    // by ioredis while it was still connecting were lost now and then (2 of 15 fresh starts in a test).
    this.sub = new Redis(options.url, { ...FAIL_FAST, autoResubscribe: false, connectionName: 'pubsub-server:sub' });
    this.sub.on('messageBuffer', (name: Buffer, payload: Buffer) => this.onMessage(name.toString(), payload.toString()));
    this.pub.on('ready', () => {
      this.wasReady = true;
      if (this.counts.outages > 0) options.log.info({ outages: this.counts.outages, lost_in_outage: this.counts.lost_in_outage }, 'redis is back: bridging again');
      else options.log.info({ url: redactUrl(options.url) }, 'redis connected');
    });
    this.pub.on('close', () => {
      if (this.wasReady) {
        this.counts.outages++;
        options.log.warn({ url: redactUrl(options.url), outages: this.counts.outages }, 'redis connection lost: publishes reach this instance only until it is back (/health 503)');
      }
      this.wasReady = false;
    });
    this.watchClients();
    const timeoutMs = options.timeoutMs ?? 2000;
    this.probe = setInterval(() => this.probeRedis(timeoutMs, options.log), PROBE_INTERVAL_MS).unref();
  }

  /** Sends a PING unless one is waiting; one waiting longer than `timeoutMs` makes the broker stalled until it is answered. */
  private probeRedis(timeoutMs: number, log: SingleRedisOptions['log']): void {
    if (this.pub.status !== 'ready') {
      this.probeSentAt = null;
      this.stalled = false;
      return;
    }
    if (this.probeSentAt !== null) {
      if (!this.stalled && Date.now() - this.probeSentAt > timeoutMs) {
        this.stalled = true;
        this.counts.outages++;
        log.warn({ timeout_ms: timeoutMs, outages: this.counts.outages }, 'redis is not answering: publishes reach this instance only until it answers (/health 503)');
      }
      return;
    }
    const sentAt = (this.probeSentAt = Date.now());
    this.pub.ping().then(
      () => {
        if (this.probeSentAt !== sentAt) return;
        this.probeSentAt = null;
        if (this.stalled) log.info({ stalled_ms: Date.now() - sentAt, lost_in_outage: this.counts.lost_in_outage }, 'redis answers again: bridging again');
        this.stalled = false;
      },
      () => {
        if (this.probeSentAt === sentAt) this.probeSentAt = null; // the connection went: its close says so
      },
    );
  }

  override async close(): Promise<void> {
    clearInterval(this.probe);
    await super.close();
  }

  /** Resolves with the position the publish script gave the message (with history), else with none. */
  publish(channel: ChannelRef, messageJson: string): Promise<Position | undefined> {
    const name = this.name(channel);
    if (this.pub.status === 'ready' && !this.stalled) return this.addToBatch(channel.name, name, messageJson);
    this.deliverLocally(channel.name, messageJson);
    return Promise.resolve(undefined);
  }

  async flush(): Promise<void> {
    while (this.batch) await this.batch.done;
    await this.lastBatch;
    await this.fence();
  }

  /**
   * A PING on the subscriber connection: Redis answers it after it has sent this connection every
   * message published before it, and ioredis hands those to the deliver handler before the answer.
   */
  async fence(): Promise<void> {
    if (this.sub.status !== 'ready') return; // nothing more can arrive: what Redis had for us is lost
    try {
      await this.sub.ping();
    } catch {
      this.problem('flush_errors');
    }
  }

  state(): string {
    if (this.stalled) return 'not answering';
    if (this.pub.status === 'ready' && this.sub.status === 'ready') return 'ready';
    return this.pub.status === 'ready' ? `subscriber ${this.sub.status}` : this.pub.status;
  }

  protected subscribeInRedis(names: string[]): Promise<unknown> {
    return this.sub.subscribe(...names);
  }

  protected unsubscribeInRedis(name: string): Promise<unknown> {
    return this.sub.unsubscribe(name);
  }

  /** One SUBSCRIBE may name every channel. */
  protected subscribeBatches(names: string[]): string[][] {
    return names.length === 0 ? [] : [names];
  }

  private addToBatch(channel: string, name: string, messageJson: string): Promise<Position | undefined> {
    let batch = this.batch;
    if (!batch) {
      let settle = (): void => undefined;
      const done = new Promise<undefined>((resolve) => (settle = () => resolve(undefined)));
      batch = this.batch = { channels: [], names: [], payloads: [], positions: [], done, settle };
      setImmediate(() => void this.sendBatch(batch as Batch));
    }
    const index = batch.channels.push(channel) - 1;
    batch.names.push(name);
    batch.payloads.push(messageJson);
    // Without history every publish of the turn shares the batch's promise: no promise per message.
    if (!this.history) return batch.done;
    const kept = batch;
    return batch.done.then(() => kept.positions[index]);
  }

  /**
   * Sends a turn's publishes as script calls of up to MAX_BATCH messages, all written at once so they
   * stay in order. A call that fails (Redis went away meanwhile) has its messages delivered here only
   * and counted as lost to the other instances, as a publish during an outage is.
   */
  private async sendBatch(batch: Batch): Promise<void> {
    this.batch = null; // it is this one: a batch is only replaced once it has been sent
    this.lastBatch = batch.done;
    const calls: Promise<void>[] = [];
    for (let from = 0; from < batch.names.length; from += MAX_BATCH) {
      const to = Math.min(batch.names.length, from + MAX_BATCH);
      calls.push(
        this.publishScript(batch, from, to).then(
          (reply) => {
            if (!Array.isArray(reply)) return;
            for (let i = from; i < to; i++) batch.positions[i] = { offset: Number(reply[2 * (i - from)]), epoch: String(reply[2 * (i - from) + 1]) };
          },
          () => {
            this.problem('publish_errors');
            for (let i = from; i < to; i++) this.deliverLocally(batch.channels[i], batch.payloads[i]);
          },
        ),
      );
    }
    await Promise.all(calls);
    batch.settle();
  }

  /** One script call for the batch's messages from `from` to `to` (exclusive). */
  private publishScript(batch: Batch, from: number, to: number): Promise<number | (number | string)[]> {
    const names = batch.names.slice(from, to);
    const payloads = batch.payloads.slice(from, to);
    const history = this.history;
    if (!history) return this.pub.publishBatch(names.length, ...names, ...payloads, this.options.expire);
    const keys: string[] = [];
    for (let i = from; i < to; i++) {
      const { stream, meta } = historyKeys(batch.channels[i], this.options.prefix);
      keys.push(batch.names[i], stream, meta);
    }
    const fresh = randomBytes(6).toString('base64url');
    return this.pub.publishKept(keys.length, ...keys, ...payloads, this.options.expire, history.size, history.ttlMs, history.metaTtlS, Date.now(), fresh);
  }
}
