/**
 * The in-memory broker: delivery within this process, and a last-message cache with expiry.
 */
import type { ChannelRef } from '../protocol/index.js';
import type { Broker, DeliverHandler } from './types.js';

/** Options of {@link LocalBroker}. */
export interface LocalBrokerOptions {
  /** Seconds the last message of a channel is kept; 0 keeps nothing. */
  expire: number;
}

/** A broker for one process. Delivery is synchronous: `publish` has delivered when it returns. */
export class LocalBroker implements Broker {
  readonly kind = 'local';
  private deliver: DeliverHandler = () => {};
  private readonly cache = new Map<string, { json: string; expiresAt: number }>();
  private readonly sweep: NodeJS.Timeout | null;

  constructor(private readonly options: LocalBrokerOptions) {
    // Expired entries are also refused on read; the sweep only bounds memory.
    this.sweep =
      options.expire > 0 ? setInterval(() => this.dropExpired(), Math.min(options.expire, 60) * 1000).unref() : null;
  }

  onDeliver(handler: DeliverHandler): void {
    this.deliver = handler;
  }

  /** Resolves with no position: in one process the hub gives offsets as messages go out (hub/fanout.ts). */
  publish(channel: ChannelRef, messageJson: string): Promise<undefined> {
    if (this.options.expire > 0) {
      this.cache.set(channel.name, { json: messageJson, expiresAt: Date.now() + this.options.expire * 1000 });
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
      this.cache.delete(channel.name);
      return Promise.resolve(undefined);
    }
    return Promise.resolve(entry.json);
  }

  state(): string {
    return 'ready';
  }

  counters(): Record<string, number> {
    return {};
  }

  close(): Promise<void> {
    if (this.sweep) clearInterval(this.sweep);
    this.cache.clear();
    return Promise.resolve();
  }

  private dropExpired(): void {
    const now = Date.now();
    for (const [channel, entry] of this.cache) if (entry.expiresAt <= now) this.cache.delete(channel);
  }
}
