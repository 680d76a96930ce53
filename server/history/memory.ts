/**
 * History in this process: the last `size` messages of each channel, each kept `ttlMs`, with offsets
 * (+1 per message on a channel, from 1) and an epoch that names this process's history (a restart
 * starts a new one). Appended as messages go out to the subscribers (the endpoint's flush), so a
 * subscriber that replays from here and subscribes in the same turn misses nothing and gets nothing
 * twice.
 */
import { randomBytes } from 'node:crypto';

/** Where a message stands in its channel's history. */
export interface Position {
  offset: number;
  epoch: string;
}

/** A kept message. */
export interface Kept {
  offset: number;
  messageJson: string;
  /** When it was kept, epoch ms. */
  at: number;
}

interface Channel {
  /** The offset the next message gets. */
  next: number;
  /** Oldest first. */
  kept: Kept[];
}

export class MemoryHistory {
  readonly epoch = randomBytes(6).toString('base64url');
  private readonly channels = new Map<string, Channel>();

  constructor(
    readonly size: number,
    private readonly ttlMs: number,
  ) {}

  /** Keeps `messageJson` as the channel's next message; returns its position. */
  append(channel: string, messageJson: string, now = Date.now()): Position {
    let state = this.channels.get(channel);
    if (!state) this.channels.set(channel, (state = { next: 1, kept: [] }));
    const offset = state.next++;
    state.kept.push({ offset, messageJson, at: now });
    if (state.kept.length > this.size) state.kept.shift();
    return { offset, epoch: this.epoch };
  }

  /**
   * What a client that last saw `since` missed: `recovered` when the kept messages reach back to the
   * one after it in this epoch (then `messages` are exactly the missed ones, oldest first); else false,
   * and `messages` are whatever is kept after it (none when the epoch differs).
   */
  since(channel: string, since: Position, now = Date.now()): { recovered: boolean; messages: Kept[] } {
    if (since.epoch !== this.epoch) return { recovered: false, messages: [] };
    const state = this.channels.get(channel);
    const last = (state?.next ?? 1) - 1;
    if (since.offset > last) return { recovered: false, messages: [] };
    const kept = this.live(state, now);
    const messages = kept.filter((k) => k.offset > since.offset);
    const firstMissed = since.offset + 1;
    const recovered = firstMissed > last || (messages.length > 0 && messages[0].offset === firstMissed);
    return { recovered, messages };
  }

  /** The last `limit` kept messages of the channel, oldest first. */
  last(channel: string, limit: number, now = Date.now()): Kept[] {
    return this.live(this.channels.get(channel), now).slice(-limit);
  }

  /** The kept messages younger than the TTL (older ones are dropped for good). */
  private live(state: Channel | undefined, now: number): Kept[] {
    if (!state) return [];
    const cutoff = now - this.ttlMs;
    let drop = 0;
    while (drop < state.kept.length && state.kept[drop].at <= cutoff) drop++;
    if (drop > 0) state.kept.splice(0, drop);
    return state.kept;
  }
}
