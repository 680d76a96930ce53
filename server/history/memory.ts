/**
 * History in this process: the last `size` messages of each channel, each kept `ttlMs`, with offsets
 * (+1 per message on a channel, from 1) and an epoch per channel. Written by the hub as messages go out
 * to the subscribers (hub/fanout.ts calls `keep`); read through the History interface.
 *
 * Bounded (server/kept-bounds.ts): a sweep drops what the TTL says whether or not anyone reads the
 * channel, and forgets a channel left with nothing; past the limits the channel published to least
 * recently is forgotten first. A forgotten channel's next message starts a new epoch, so an offset never
 * names two messages, and a client that last saw the old epoch gets `recovered: false`.
 */
import { randomBytes } from 'node:crypto';
import { evictOldest, keptChannelBytes, keptMessageBytes, NO_LIMITS, type KeptCounters, type KeptLimits } from '../kept-bounds.js';
import type { History, Kept, Missed, Position } from './types.js';

/** A kept message and when it was kept (epoch ms). */
interface Timed extends Kept {
  at: number;
}

interface Channel {
  /** This channel's epoch: the process's, and which start of a channel in it this is. */
  epoch: string;
  /** The offset the next message gets. */
  next: number;
  /** Oldest first. */
  kept: Timed[];
}

/**
 * Guarantees: exact within this process, for what is kept. A channel's epoch is new whenever its history
 * was lost: a restart, or the channel forgotten (everything of it expired, or the limits dropped it).
 */
export class MemoryHistory implements History {
  readonly kind = 'memory';
  private readonly processEpoch = randomBytes(6).toString('base64url');
  /** How many channels were started: each start gets an epoch of its own. */
  private starts = 0;
  /** Least recently published first (a keep moves its channel to the end). */
  private readonly channels = new Map<string, Channel>();
  private bytes = 0;
  private expired = 0;
  private evicted = 0;
  private readonly sweeper: NodeJS.Timeout;

  /** `now`: the clock, epoch ms (tests move it). */
  constructor(
    readonly size: number,
    private readonly ttlMs: number,
    private readonly limits: KeptLimits = NO_LIMITS,
    private readonly now: () => number = Date.now,
  ) {
    // Often enough that an expired message outlives its TTL by at most half of it (at most 30 s).
    this.sweeper = setInterval(() => this.sweep(), Math.max(250, Math.min(30_000, Math.floor(ttlMs / 2)))).unref();
  }

  /** Keeps `messageJson` as the channel's next message; returns its position. */
  keep(channel: string, messageJson: string): Position {
    let state = this.channels.get(channel);
    if (state) {
      this.channels.delete(channel); // to the end: published to most recently
    } else {
      state = { epoch: `${this.processEpoch}.${(++this.starts).toString(36)}`, next: 1, kept: [] };
      this.bytes += keptChannelBytes(channel);
    }
    this.channels.set(channel, state);
    const offset = state.next++;
    state.kept.push({ offset, messageJson, at: this.now() });
    this.bytes += keptMessageBytes(messageJson);
    if (state.kept.length > this.size) this.bytes -= keptMessageBytes(state.kept.shift()!.messageJson);
    this.evicted += evictOldest(this.channels, () => this.bytes, this.limits, (oldest) => this.forget(oldest), channel);
    return { offset, epoch: state.epoch };
  }

  since(channel: string, since: Position): Promise<Missed> {
    const state = this.channels.get(channel);
    if (!state || since.epoch !== state.epoch) return Promise.resolve({ recovered: false, messages: [] });
    const last = state.next - 1;
    if (since.offset > last) return Promise.resolve({ recovered: false, messages: [] });
    const messages = this.live(state).filter((k) => k.offset > since.offset).map(untimed);
    const firstMissed = since.offset + 1;
    const recovered = firstMissed > last || (messages.length > 0 && messages[0].offset === firstMissed);
    return Promise.resolve({ recovered, messages });
  }

  last(channel: string, limit: number): Promise<{ epoch: string; messages: Kept[] }> {
    const state = this.channels.get(channel);
    if (!state) return Promise.resolve({ epoch: '', messages: [] });
    return Promise.resolve({ epoch: state.epoch, messages: this.live(state).slice(-limit).map(untimed) });
  }

  /** What is kept now, and what the TTL and the limits dropped (`/stats` `history`). */
  counters(): KeptCounters {
    return { channels: this.channels.size, bytes: this.bytes, expired: this.expired, evicted: this.evicted };
  }

  close(): Promise<void> {
    clearInterval(this.sweeper);
    this.channels.clear();
    this.bytes = 0;
    return Promise.resolve();
  }

  /**
   * The kept messages younger than the TTL (older ones are dropped for good). The channel itself stays
   * until the sweep, so a reader in between still sees its epoch and offsets.
   */
  private live(state: Channel): Timed[] {
    const cutoff = this.now() - this.ttlMs;
    let drop = 0;
    while (drop < state.kept.length && state.kept[drop].at <= cutoff) this.bytes -= keptMessageBytes(state.kept[drop++].messageJson);
    if (drop > 0) state.kept.splice(0, drop);
    this.expired += drop;
    return state.kept;
  }

  /** Drops what expired on every channel, and forgets the channels left with nothing. */
  sweep(): void {
    for (const [channel, state] of this.channels) if (this.live(state).length === 0) this.forget(channel);
  }

  private forget(channel: string): void {
    const state = this.channels.get(channel);
    if (!state) return;
    this.channels.delete(channel);
    for (const kept of state.kept) this.bytes -= keptMessageBytes(kept.messageJson);
    this.bytes -= keptChannelBytes(channel);
  }
}

const untimed = ({ offset, messageJson }: Timed): Kept => ({ offset, messageJson });
