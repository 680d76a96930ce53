/**
 * Presence across instances through Redis.
 *
 * Layout: a hash per channel, `[P:]presence:<channel>`, a field per member (its connection id) whose
 * value is `{"m":<member>,"e":<expiry, epoch ms>}`. Each instance rewrites its own members' fields
 * every heartbeat with the expiry two heartbeats ahead, so an instance that dies without cleaning up
 * (SIGKILL) drops out of every member list within two heartbeats: readers skip and delete expired
 * fields. Joins and leaves are also published on `[P:]presence-events`, which every instance
 * subscribes to, and reach the subscribers that asked for them (this instance's own too, by the same
 * path, so every instance sees one order).
 *
 * Guarantees: a member list holds every live member of every reachable instance, and those of an
 * instance dead for less than two heartbeats. Join/leave events are at most once: one published
 * while Redis is away is lost (counted in `presence_errors`), and a dead instance's members vanish
 * from the lists without a leave event.
 */
import { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { prefixed } from '../protocol/index.js';
import type { Member, PresenceHandler, PresenceStore } from './types.js';

export interface RedisPresenceOptions {
  url: string;
  prefix: string;
  /** Milliseconds between heartbeats. */
  heartbeatMs: number;
  log: Logger;
}

interface Field {
  m: Member;
  e: number;
}

export class RedisPresence implements PresenceStore {
  readonly kind = 'redis';
  private readonly client: Redis;
  private readonly subscriber: Redis;
  private readonly own = new Map<string, Map<string, Member>>();
  private readonly eventsChannel: string;
  private handler: PresenceHandler = () => {};
  private timer: NodeJS.Timeout | null = null;
  private readonly counts = { presence_errors: 0, presence_heartbeats: 0, presence_expired: 0 };

  constructor(private readonly options: RedisPresenceOptions) {
    const base = { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: (n: number) => Math.min(n * 100, 2000) };
    this.client = new Redis(options.url, base);
    this.subscriber = new Redis(options.url, base);
    for (const connection of [this.client, this.subscriber]) connection.on('error', () => {}); // counted where a command fails
    this.eventsChannel = prefixed(options.prefix, 'presence-events');
  }

  private key(channel: string): string {
    return prefixed(this.options.prefix, `presence:${channel}`);
  }

  onEvent(handler: PresenceHandler): void {
    this.handler = handler;
  }

  async start(): Promise<void> {
    try {
      await Promise.all([this.client.connect(), this.subscriber.connect()]);
      await this.subscriber.subscribe(this.eventsChannel);
    } catch (err) {
      this.client.disconnect();
      this.subscriber.disconnect();
      throw new Error(`presence: cannot reach Redis: ${(err as Error).message}`);
    }
    this.subscriber.on('message', (_channel: string, text: string) => {
      try {
        const event = JSON.parse(text) as { k: 'join' | 'leave'; c: string; m: Member };
        this.handler(event.k, event.c, event.m);
      } catch {
        this.counts.presence_errors++; // not ours: something else published on the events channel
      }
    });
    this.timer = setInterval(() => this.heartbeat(), this.options.heartbeatMs);
    this.timer.unref();
  }

  join(channel: string, member: Member): void {
    let members = this.own.get(channel);
    if (!members) this.own.set(channel, (members = new Map()));
    members.set(member.connection, member);
    const key = this.key(channel);
    this.run(
      this.client
        .multi()
        .hset(key, member.connection, this.field(member))
        .pexpire(key, this.options.heartbeatMs * 3)
        .publish(this.eventsChannel, JSON.stringify({ k: 'join', c: channel, m: member }))
        .exec(),
    );
  }

  leave(channel: string, member: Member): void {
    const members = this.own.get(channel);
    if (!members?.delete(member.connection)) return;
    if (members.size === 0) this.own.delete(channel);
    this.run(
      this.client
        .multi()
        .hdel(this.key(channel), member.connection)
        .publish(this.eventsChannel, JSON.stringify({ k: 'leave', c: channel, m: member }))
        .exec(),
    );
  }

  async members(channel: string): Promise<Member[]> {
    const fields = await this.client.hgetall(this.key(channel));
    const now = Date.now();
    const live: Member[] = [];
    const expired: string[] = [];
    for (const [connection, text] of Object.entries(fields)) {
      const field = JSON.parse(text) as Field;
      if (field.e > now) live.push(field.m);
      else expired.push(connection);
    }
    if (expired.length > 0) {
      this.counts.presence_expired += expired.length;
      this.run(this.client.hdel(this.key(channel), ...expired));
    }
    return live;
  }

  counters(): Record<string, number> {
    return { ...this.counts };
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const pipeline = this.client.pipeline();
    for (const [channel, members] of this.own) if (members.size > 0) pipeline.hdel(this.key(channel), ...members.keys());
    this.own.clear();
    await pipeline.exec().catch(() => {});
    this.client.disconnect();
    this.subscriber.disconnect();
  }

  /** Rewrites every own member's field with a fresh expiry, and keeps each hash from expiring. */
  private heartbeat(): void {
    if (this.own.size === 0) return;
    this.counts.presence_heartbeats++;
    const pipeline = this.client.pipeline();
    for (const [channel, members] of this.own) {
      const key = this.key(channel);
      for (const member of members.values()) pipeline.hset(key, member.connection, this.field(member));
      pipeline.pexpire(key, this.options.heartbeatMs * 3);
    }
    this.run(pipeline.exec());
  }

  private field(member: Member): string {
    return JSON.stringify({ m: member, e: Date.now() + this.options.heartbeatMs * 2 } satisfies Field);
  }

  /** Redis failures are counted and logged (throttled by pino's caller), never thrown at the endpoint. */
  private run(pending: Promise<unknown>): void {
    pending.catch((err: Error) => {
      this.counts.presence_errors++;
      this.options.log.debug({ err: err.message }, 'presence: a Redis command failed');
    });
  }
}
