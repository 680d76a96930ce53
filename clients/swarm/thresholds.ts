/**
 * Thresholds (`--threshold 'rtt_p99<50'`): a figure of the run, an operator and a number, judged on
 * the run's summary at its end, and with `--abort-on-fail` on its figures so far each second, so a CI
 * job can fail on what the run measured. The figures:
 *
 * - `<latency>_<stat>`, milliseconds: a latency the run keeps (connect, rtt, slow, fanout, lag, loop) or
 *   a user scenario's named timing (`login_p99`; the stat is after the last `_`), with a stat of
 *   min, mean, p50, p90, p99, p999, max, or count (how many were timed);
 * - `checks` (the share of checks passed, 0 to 1), `checks{name}` (one check's);
 * - `errors` (clients failed), `errors{kind}` (of one kind: timeout, script, ...);
 * - `completed` (clients whose scenario ran to its end), `lost` (broadcast copies lost).
 *
 * A figure the run did not measure (no value timed, no check of that name) fails its threshold: a
 * threshold that passes because nothing happened would tell a pipeline the wrong thing.
 */
import { ERROR_KINDS, HISTOGRAMS, totalErrors, type Counters, type ErrorKind, type LatencySummary } from './metrics.js';
import { checkTotals, type Checks } from './named-metrics.js';

export const THRESHOLD_OPERATORS = ['<=', '>=', '==', '!=', '<', '>'] as const;
type Operator = (typeof THRESHOLD_OPERATORS)[number];
export const LATENCY_STATS = ['min', 'mean', 'p50', 'p90', 'p99', 'p999', 'max', 'count'] as const;
type Stat = (typeof LATENCY_STATS)[number];

/** `metric{selector} op number`; a selector holds no braces, quotes or commas (commas separate thresholds). */
const EXPRESSION = /^\s*([A-Za-z][A-Za-z0-9_.:-]*)(?:\{([^{}",]+)\})?\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)\s*$/;

export type Threshold =
  | { text: string; figure: 'latency'; name: string; stat: Stat; operator: Operator; limit: number }
  | { text: string; figure: 'checks'; name: string | null; operator: Operator; limit: number }
  | { text: string; figure: 'errors'; kind: ErrorKind | null; operator: Operator; limit: number }
  | { text: string; figure: 'completed' | 'lost'; operator: Operator; limit: number };

/** What a threshold is judged on: the figures of a run summary (clients/swarm/swarm.ts, RunSummary). */
export interface JudgedFigures {
  counters: Counters;
  lostDeliveries: number | null;
  checks: Checks;
  timings: Record<string, LatencySummary>;
  connect: LatencySummary | null;
  rtt: LatencySummary | null;
  slow: LatencySummary | null;
  fanout: LatencySummary | null;
  lag: LatencySummary | null;
  loop: LatencySummary | null;
}

export interface ThresholdResult {
  threshold: string;
  /** The figure measured; null when the run did not measure it. */
  measured: number | null;
  pass: boolean;
}

/** Parses one threshold; throws a RangeError saying what is wrong. */
export function parseThreshold(text: string): Threshold {
  const match = EXPRESSION.exec(text);
  if (!match) throw new RangeError(`${JSON.stringify(text)} is not <figure><operator><number>, e.g. rtt_p99<50, checks>=0.99, errors==0, login_p95<=200`);
  const [, metric, selector, operator, number] = match as unknown as [string, string, string | undefined, Operator, string];
  const limit = Number(number);
  const base = { text: text.trim(), operator, limit };
  switch (metric) {
    case 'checks':
      return { ...base, figure: 'checks', name: selector?.trim() ?? null };
    case 'errors':
      if (selector !== undefined && !(ERROR_KINDS as readonly string[]).includes(selector.trim())) {
        throw new RangeError(`${JSON.stringify(text)}: errors{${selector}} names no error kind (${ERROR_KINDS.join(', ')})`);
      }
      return { ...base, figure: 'errors', kind: (selector?.trim() as ErrorKind | undefined) ?? null };
    case 'completed':
    case 'lost':
      if (selector !== undefined) throw new RangeError(`${JSON.stringify(text)}: ${metric} takes no {selector}`);
      return { ...base, figure: metric };
  }
  const split = metric.lastIndexOf('_');
  const stat = metric.slice(split + 1) as Stat;
  if (split <= 0 || !(LATENCY_STATS as readonly string[]).includes(stat) || selector !== undefined) {
    throw new RangeError(`${JSON.stringify(text)}: a timing's figure is <name>_<stat>, the stat one of ${LATENCY_STATS.join(', ')} (rtt_p99, login_max); or checks, checks{name}, errors, errors{kind}, completed, lost`);
  }
  return { ...base, figure: 'latency', name: metric.slice(0, split), stat };
}

/** Whether `text` parses (for the option's validator). */
export function isThreshold(text: string): boolean {
  try {
    parseThreshold(text);
    return true;
  } catch {
    return false;
  }
}

/** The figure a threshold reads from a run; null when the run did not measure it. */
export function measure(threshold: Threshold, run: JudgedFigures): number | null {
  switch (threshold.figure) {
    case 'checks': {
      if (threshold.name === null) return checkTotals(run.checks).rate;
      const count = run.checks[threshold.name];
      return count ? count.passed / (count.passed + count.failed) : null;
    }
    case 'errors':
      return threshold.kind === null ? totalErrors(run.counters) : run.counters.errors[threshold.kind];
    case 'completed':
      return run.counters.completed;
    case 'lost':
      return run.lostDeliveries;
    case 'latency': {
      const own = (HISTOGRAMS as readonly string[]).includes(threshold.name);
      const latency = own ? run[threshold.name as (typeof HISTOGRAMS)[number]] : run.timings[threshold.name];
      return latency ? latency[threshold.stat] : null;
    }
  }
}

/** Judges every threshold on `run`. */
export function judge(thresholds: readonly Threshold[], run: JudgedFigures): ThresholdResult[] {
  return thresholds.map((threshold) => {
    const measured = measure(threshold, run);
    return { threshold: threshold.text, measured, pass: measured !== null && holds(measured, threshold.operator, threshold.limit) };
  });
}

function holds(value: number, operator: Operator, limit: number): boolean {
  switch (operator) {
    case '<':
      return value < limit;
    case '<=':
      return value <= limit;
    case '>':
      return value > limit;
    case '>=':
      return value >= limit;
    case '==':
      return value === limit;
    case '!=':
      return value !== limit;
  }
}
