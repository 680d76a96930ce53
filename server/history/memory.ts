/**
 * History in this process: the last `size` messages of each channel, each kept `ttlMs`, with offsets
 * (+1 per message on a channel, from 1) and an epoch that names this process's history (a restart
 * starts a new one). Written by the hub as messages go out to the subscribers (hub/fanout.ts calls
 * `keep`); read through the History interface.
 */
import { randomBytes } from 'node:crypto';
import type { History, Kept, Missed, Position } from './types.js';

/** A kept message and when it was kept (epoch ms). */
interface Timed extends Kept {
  at: number;
}

interface Channel {
  /** The offset the next message gets. */
  next: number;
  /** Oldest first. */
  kept: Timed[];
}

/**
 * Guarantees: exact within this process. The epoch is the process's: a restart starts a new one, and
 * every channel's offset counter is kept for the process's life (a few bytes per channel ever
 * published to), so a channel whose messages all expired goes on counting where it was.
 */
export class MemoryHistory implements History {
  readonly kind = 'memory';
  readonly epoch = randomBytes(6).toString('base64url');
  private readonly channels = new Map<string, Channel>();

  /** `now`: the clock, epoch ms (tests move it). */
  constructor(
    readonly size: number,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Keeps `messageJson` as the channel's next message; returns its position. */
  keep(channel: string, messageJson: string): Position {
    let state = this.channels.get(channel);
    if (!state) this.channels.set(channel, (state = { next: 1, kept: [] }));
    const offset = state.next++;
    state.kept.push({ offset, messageJson, at: this.now() });
    if (state.kept.length > this.size) state.kept.shift();
    return { offset, epoch: this.epoch };
  }

  since(channel: string, since: Position): Promise<Missed> {
    if (since.epoch !== this.epoch) return Promise.resolve({ recovered: false, messages: [] });
    const state = this.channels.get(channel);
    const last = (state?.next ?? 1) - 1;
    if (since.offset > last) return Promise.resolve({ recovered: false, messages: [] });
    const messages = this.live(state).filter((k) => k.offset > since.offset).map(untimed);
    const firstMissed = since.offset + 1;
    const recovered = firstMissed > last || (messages.length > 0 && messages[0].offset === firstMissed);
    return Promise.resolve({ recovered, messages });
  }

  last(channel: string, limit: number): Promise<{ epoch: string; messages: Kept[] }> {
    return Promise.resolve({ epoch: this.epoch, messages: this.live(this.channels.get(channel)).slice(-limit).map(untimed) });
  }

  close(): Promise<void> {
    this.channels.clear();
    return Promise.resolve();
  }

  /** The kept messages younger than the TTL (older ones are dropped for good). */
  private live(state: Channel | undefined): Timed[] {
    if (!state) return [];
    const cutoff = this.now() - this.ttlMs;
    let drop = 0;
    while (drop < state.kept.length && state.kept[drop].at <= cutoff) drop++;
    if (drop > 0) state.kept.splice(0, drop);
    return state.kept;
  }
}

const untimed = ({ offset, messageJson }: Timed): Kept => ({ offset, messageJson });
