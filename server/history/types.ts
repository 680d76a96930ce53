/**
 * Where the kept messages of each channel live (`--history`), for reading: in this process (memory.ts),
 * where the hub keeps each message as it goes out and gives it its offset, or in Redis (redis.ts),
 * where the broker's publish script gives each message its offset, keeps it and publishes it in one
 * atomic step, so that every instance agrees on offsets. The endpoint reads through this interface
 * only; one contract suite (test/history-contract.test.ts) runs against both drivers.
 */
import type { Position } from '../protocol/index.js';

export type { Position } from '../protocol/index.js';

/** A kept message. */
export interface Kept {
  offset: number;
  messageJson: string;
}

/** What a client that last saw a position missed. */
export interface Missed {
  /**
   * True when `messages` are exactly the messages after the position, oldest first (none when nothing
   * was published since); false when that cannot be promised: another epoch (then `messages` is empty),
   * an offset never given, or messages after it that are no longer kept (then `messages` is what is).
   */
  recovered: boolean;
  messages: Kept[];
}

/**
 * A history store.
 *
 * Guarantees (each driver's TSDoc says how):
 * - Offsets of a channel count from 1, +1 per kept message, within one epoch; a new epoch starts
 *   whenever the store lost the channel's history, so an offset never names two messages.
 * - `since` and `last` return messages oldest first, none older than the TTL.
 */
export interface History {
  /** `memory` or `redis`. */
  readonly kind: string;
  /** Messages kept per channel (at least; `last` returns at most this many). */
  readonly size: number;
  /** What a client that last saw `since` on `channel` missed. */
  since(channel: string, since: Position): Promise<Missed>;
  /** The last `limit` kept messages of `channel`, oldest first, and the channel's epoch ('' when it has none yet). */
  last(channel: string, limit: number): Promise<{ epoch: string; messages: Kept[] }>;
  /** Releases connections. */
  close(): Promise<void>;
}
