/**
 * Whose a latency is: a figure the swarm prints is the server's only while the swarm's own event-loop
 * delay is a small part of it. A reply that reached a worker while its loop was busy waited for the loop
 * before it was timed, so the worker's loop delay over the seconds that timed latencies (the `loop`
 * histogram, clients/swarm/worker.ts) is the harness's part of each one. Its p99 against a latency's p99
 * gives the verdict each output prints: the server's, shared, or the swarm's own.
 */
import type { LatencySummary } from './metrics.js';

export const LATENCY_OWNERS = ['server', 'shared', 'swarm'] as const;
export type LatencyOwner = (typeof LATENCY_OWNERS)[number];

/** Below this share of a latency's p99, the swarm's own delay leaves the figure the server's. */
export const SERVER_SHARE_BELOW = 0.1;
/** From this share up, the figure is the swarm's own delay more than anything the server did. */
export const SWARM_SHARE_FROM = 0.5;

/** The latencies a run prints as the server's (lag is the publisher's own by definition). */
export const TIMED_LATENCIES = ['rtt', 'slow', 'fanout'] as const;
export type TimedLatency = (typeof TIMED_LATENCIES)[number];

export interface Ownership {
  owner: LatencyOwner;
  /** The swarm's loop-delay p99 over the latency's p99 (may exceed 1). */
  share: number;
}

/** The verdict for one latency; null when either figure is missing (nothing timed, or no loop samples). */
export function ownership(latency: LatencySummary | null, loop: LatencySummary | null): Ownership | null {
  if (!latency || !loop || !(latency.p99 > 0)) return null;
  const share = loop.p99 / latency.p99;
  return { owner: share < SERVER_SHARE_BELOW ? 'server' : share < SWARM_SHARE_FROM ? 'shared' : 'swarm', share };
}

/** The verdict in words, e.g. "rtt p99 208.00 ms is the server's (the swarm's own loop delay p99 is 2% of it)". */
export function ownershipText(name: string, latency: LatencySummary, loop: LatencySummary, verdict: Ownership): string {
  const pct = `${Math.round(verdict.share * 100)}%`;
  const head = `${name} p99 ${latency.p99.toFixed(2)} ms`;
  switch (verdict.owner) {
    case 'server':
      return `${head} is the server's (the swarm's own loop delay p99 ${loop.p99.toFixed(2)} ms is ${pct} of it)`;
    case 'shared':
      return `${head} is partly the swarm's: its own loop delay p99 ${loop.p99.toFixed(2)} ms is ${pct} of it`;
    case 'swarm':
      return `${head} is NOT the server's: the swarm's own loop delay p99 ${loop.p99.toFixed(2)} ms is ${pct} of it`;
  }
}
