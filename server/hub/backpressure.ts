/**
 * Slow consumers: the server keeps `--max-backpressure` itself (uWS is given no cap, because past its
 * cap uWS drops every send, the goodbye and the close frame included, and the client sees 1006). A
 * connection found above the limit is a slow consumer: the endpoint says goodbye and closes it with
 * 1008.
 *
 * Every connection is looked at by a sweep that runs whenever the bytes published since the last sweep
 * add up to SWEEP_BUDGET_SHARE of the limit (told between messages as a turn's outbox goes out) and
 * once a second (the endpoint's timer); a connection sent a reply directly is looked at after the send.
 * No connection receives more than every published byte, so none gets further than the limit plus that
 * budget plus one frame before it is found, at any publish rate; the sweep runs as often as the bytes
 * flowing require and no more often.
 */
import type { Stats } from '../stats.js';

/** Published bytes, as a share of `--max-backpressure`, after which every connection is swept. */
const SWEEP_BUDGET_SHARE = 0.25;

export interface SweepParts<C> {
  /** `--max-backpressure`, bytes. */
  limit: number;
  /** The connections to look at (the live set: it may change between sweeps). */
  connections: Iterable<C>;
  /** Bytes queued for a connection. */
  buffered(connection: C): number;
  /** A connection found above the limit: the endpoint ends it. */
  slow(connection: C): void;
  stats: Stats;
}

/** The slow-consumer sweep and its budget. */
export class SlowConsumerSweep<C = unknown> {
  /** Characters published since the last sweep, and how many make the next sweep due. */
  private unswept = 0;
  private readonly budget: number;
  private stopped = false;

  constructor(private readonly parts: SweepParts<C>) {
    this.budget = Math.max(1, Math.floor(parts.limit * SWEEP_BUDGET_SHARE));
  }

  /** `chars` more went out to a topic: sweeps when the budget is spent. */
  published(chars: number): void {
    this.unswept += chars;
    if (this.unswept >= this.budget) this.sweep();
  }

  /** Looks at one connection (after a direct send to it). */
  check(connection: C): void {
    if (this.parts.buffered(connection) > this.parts.limit) this.parts.slow(connection);
  }

  /** Looks at every connection, counted in `/stats` `sweeps` and `sweep_ms`. */
  sweep(): void {
    if (this.stopped) return;
    const started = performance.now();
    this.unswept = 0;
    const { limit, connections, buffered, slow, stats } = this.parts;
    for (const connection of connections) {
      if (buffered(connection) > limit) slow(connection);
    }
    stats.sweeps++;
    stats.sweepMs += performance.now() - started;
  }

  /** No sweeps from now on (shutdown). */
  stop(): void {
    this.stopped = true;
  }
}
