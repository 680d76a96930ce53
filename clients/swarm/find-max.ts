/**
 * "How far does it go?": runs the same scenario again and again with more clients each time (x `factor`)
 * until a step fails, and reports the largest count that held. A step fails when its p99 (echo: the
 * round trip; broadcast: the round trip, or the fanout with publishers) passes `p99LimitMs`, when any
 * client failed, or when a broadcast copy was lost. Each step keeps the saturated side, so the answer
 * says whose CPU ran out, not only where. It stops at `maxClients` too, or when a count is refused by the
 * options (too many clients per worker or per source address), saying so.
 */
import { Swarm, type RunSummary } from './swarm.js';
import { totalErrors } from './metrics.js';
import { validateSwarmOptions, type SwarmOptions } from './options.js';

export interface FindMaxOptions {
  /** The p99 (ms) a step must stay within. */
  p99LimitMs: number;
  /** Clients of a step = clients of the one before x factor (rounded up). */
  factor: number;
  /** No step goes beyond this many clients. */
  maxClients: number;
  /** Called with each step's summary before the next starts (for progress and CSV rows). */
  onStep?: (step: FindMaxStep) => void;
  /** Called with each step's swarm before it runs (to attach progress or Ctrl-C handling). */
  onSwarm?: (swarm: Swarm) => void;
}

export interface FindMaxStep {
  clients: number;
  /** The p99 judged, ms; null when nothing was timed. */
  p99Ms: number | null;
  errors: number;
  lostDeliveries: number;
  held: boolean;
  /** Why the step failed; null when it held. */
  why: string | null;
  summary: RunSummary;
}

export interface FindMaxResult {
  steps: FindMaxStep[];
  /** The largest client count that held; null when the first step failed. */
  held: number | null;
  /** Why the search ended. */
  ended: string;
}

/** The p99 a step is judged by, in ms. */
function judgedP99(summary: RunSummary): number | null {
  const o = summary.options;
  const latency = o.scenario === 'broadcast' && o.publishers > 0 ? summary.fanout : summary.rtt;
  return latency?.p99 ?? null;
}

export async function findMax(base: Partial<SwarmOptions>, options: FindMaxOptions): Promise<FindMaxResult> {
  const steps: FindMaxStep[] = [];
  let clients = base.clients ?? 1;
  let held: number | null = null;
  for (;;) {
    try {
      validateSwarmOptions({ ...base, clients });
    } catch (err) {
      return { steps, held, ended: `${clients} clients refused: ${(err as Error).message}` };
    }
    const swarm = new Swarm({ ...base, clients });
    options.onSwarm?.(swarm);
    const summary = await swarm.run();
    const p99Ms = judgedP99(summary);
    const errors = totalErrors(summary.counters);
    const lostDeliveries = summary.lostDeliveries ?? 0;
    const why =
      errors > 0 ? `${errors} client(s) failed`
      : lostDeliveries > 0 ? `${lostDeliveries} broadcast copies lost`
      : p99Ms === null ? 'nothing was timed'
      : p99Ms > options.p99LimitMs ? `p99 ${p99Ms} ms above the limit of ${options.p99LimitMs} ms`
      : null;
    const step: FindMaxStep = { clients, p99Ms, errors, lostDeliveries, held: why === null && !summary.interrupted, why, summary };
    steps.push(step);
    options.onStep?.(step);
    if (summary.interrupted) return { steps, held, ended: `interrupted (${summary.interrupted})` };
    if (!step.held) return { steps, held, ended: `${clients} clients: ${why}` };
    held = clients;
    if (clients >= options.maxClients) return { steps, held, ended: `reached --max-clients ${options.maxClients}` };
    clients = Math.min(options.maxClients, Math.ceil(clients * options.factor));
  }
}
