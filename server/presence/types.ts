/**
 * Presence: who is subscribed to a channel, on every instance, and join/leave events as they come and
 * go. A store is a driver behind this interface, one per file, each stating what it guarantees.
 */
import type { events } from '../protocol/index.js';

export type Member = events.Member;

/** Receives every join and leave of every channel, from this instance and (with Redis) the others. */
export type PresenceHandler = (kind: 'join' | 'leave', channel: string, member: Member) => void;

export interface PresenceStore {
  /** `local` or `redis`. */
  readonly kind: string;
  /** Registers the one handler of join/leave events. Call before the first join. */
  onEvent(handler: PresenceHandler): void;
  /** Connects (Redis); rejects naming the server when it cannot. */
  start(): Promise<void>;
  /** `member` subscribed to `channel` here. Never throws; a failure is counted. */
  join(channel: string, member: Member): void;
  /** `member` left `channel` here (unsubscribed or closed). Never throws; a failure is counted. */
  leave(channel: string, member: Member): void;
  /** The members of `channel` on every instance the store can see. */
  members(channel: string): Promise<Member[]>;
  /** Its counters for /stats (snake_case). */
  counters(): Record<string, number>;
  /** Stops heartbeats and releases connections; the members it still holds leave. */
  close(): Promise<void>;
}
