/**
 * The in-memory broker: delivery within this process, and a last-message cache with expiry, bounded
 * like every store of what is kept for channels (server/kept-bounds.ts).
 */
import { evictOldest, keptChannelBytes, keptMessageBytes, NO_LIMITS, type KeptCounters, type KeptLimits } from '../kept-bounds.js';
import type { ChannelRef } from '../protocol/index.js';
import type { Broker, DeliverHandler } from './types.js';

/** Options of {@link LocalBroker}. */
export interface LocalBrokerOptions {
  /** Seconds the last message of a channel is kept; 0 keeps nothing. */
  expire: number;
  /** How many channels and bytes the cache keeps at most; past them the least recently published channel goes. */
  limits?: KeptLimits;
}

/** A broker for one process. Delivery is synchronous: `publish` has delivered when it returns. */
export class LocalBroker implements Broker {
  readonly kind = 'local';
  private deliver: DeliverHandler = () => {};
  /** Least recently published first (a publish moves its channel to the end). */
  private readonly cache = new Map<string, { json: string; expiresAt: number }>();
  private cacheBytes = 0;
  private expired = 0;
  private evicted = 0;
  private readonly sweep: NodeJS.Timeout | null;

  constructor(private readonly options: LocalBrokerOptions) {
    // Expired entries are also refused on read; the sweep only bounds memory.
    this.sweep =
      options.expire > 0 ? setInterval(() => this.dropExpired(), Math.min(options.expire, 60) * 1000).unref() : null;
  }

  /** What the cache keeps now, and what expiry and the limits dropped (`/stats` `cache`). */
  cacheCounters(): KeptCounters {
    return { channels: this.cache.size, bytes: this.cacheBytes, expired: this.expired, evicted: this.evicted };
  }

  onDeliver(handler: DeliverHandler): void {
    this.deliver = handler;
  }

  /** Resolves with no position: in one process the hub gives offsets as messages go out (hub/fanout.ts). */
  publish(channel: ChannelRef, messageJson: string): Promise<undefined> {
    if (this.options.expire > 0) {
      this.uncache(channel.name);
      this.cache.set(channel.name, { json: messageJson, expiresAt: Date.now() + this.options.expire * 1000 });
      this.cacheBytes += keptChannelBytes(channel.name) + keptMessageBytes(messageJson);
      const limits = this.options.limits ?? NO_LIMITS;
      this.evicted += evictOldest(this.cache, () => this.cacheBytes, limits, (oldest) => this.uncache(oldest), channel.name);
    }
    this.deliver(channel.name, messageJson);
    return Promise.resolve(undefined);
  }

  /** Delivery is synchronous, so everything published was delivered already. */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  /** Delivery is synchronous: what was published has been delivered. */
  fence(): Promise<void> {
    return Promise.resolve();
  }

  retain(): void {}

  subscribed(): null {
    return null;
  }

  release(): void {}

  lastMessage(channel: ChannelRef): Promise<string | undefined> {
    const entry = this.cache.get(channel.name);
    if (!entry) return Promise.resolve(undefined);
    if (entry.expiresAt <= Date.now()) {
      this.uncache(channel.name);
      this.expired++;
      return Promise.resolve(undefined);
    }
    return Promise.resolve(entry.json);
  }

  state(): string {
    return 'ready';
  }

  /** The last-message cache's: `cache_channels`, `cache_bytes`, `cache_expired`, `cache_evicted` (with `--expire`). */
  counters(): Record<string, number> {
    if (this.options.expire === 0) return {};
    return Object.fromEntries(Object.entries(this.cacheCounters()).map(([key, value]) => [`cache_${key}`, value]));
  }

  close(): Promise<void> {
    if (this.sweep) clearInterval(this.sweep);
    this.cache.clear();
    this.cacheBytes = 0;
    return Promise.resolve();
  }

  private uncache(channel: string): void {
    const entry = this.cache.get(channel);
    if (!entry) return;
    this.cache.delete(channel);
    this.cacheBytes -= keptChannelBytes(channel) + keptMessageBytes(entry.json);
  }

  private dropExpired(): void {
    const now = Date.now();
    for (const [channel, entry] of this.cache) {
      if (entry.expiresAt > now) continue;
      this.uncache(channel);
      this.expired++;
    }
  }
}
