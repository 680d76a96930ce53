/**
 * What a user scenario names itself: timings (`ctx.time('login', ...)`, an HDR histogram of µs per
 * name, like the run's own) and checks (`ctx.check(ok, 'status 200')`, passed and failed per name).
 * A worker keeps its own, sends its timings of each interval and its checks so far with every report,
 * and the engine merges them as it merges the run's histograms and counters.
 *
 * Names are bounded: a scenario that made up a name per client (a user id in it) would otherwise grow
 * every worker's memory and every report without limit, so the MAX_NAMES-th new name of a kind throws.
 */
import hdr from 'hdr-histogram-js';
import { HISTOGRAMS, newHistogram, record, SwarmError, type Histogram } from './metrics.js';

/** Distinct timing names, and distinct check names, a run may use. */
export const MAX_NAMES = 100;
/** What a timing's name may be: it becomes a threshold's metric (`login_p99<200`). */
const TIMING_NAME = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/;
/** What a check's name may be: words people read (`status is 200`), selected in a threshold as `checks{status is 200}`. */
const CHECK_NAME = /^[^\u0000-\u001f{}"]{1,100}$/;

/** Passed and failed of one check. */
export interface CheckCount {
  passed: number;
  failed: number;
}

export type Checks = Record<string, CheckCount>;

/** Throws a `script` error unless `name` is a usable timing or check name. */
export function checkName(name: unknown, what: 'timing' | 'check'): string {
  const [pattern, rule] = what === 'timing'
    ? [TIMING_NAME, 'a letter then up to 63 of A-Z a-z 0-9 _ . : -']
    : [CHECK_NAME, '1 to 100 characters, none of them a control character, { } or "'];
  if (typeof name !== 'string' || !pattern.test(name)) throw new SwarmError('script', `a ${what} name must be ${rule} (got ${JSON.stringify(name)?.slice(0, 80)})`);
  return name;
}

/** One worker's named timings (of the current interval) and checks (so far). */
export class NamedMetrics {
  private readonly timings = new Map<string, Histogram>();
  /** Every timing name seen, so the bound holds across intervals. */
  private readonly timingNames = new Set<string>();
  readonly checks: Checks = {};
  private checkNames = 0;

  /**
   * Records `micros` under timing `name`. The run's own histogram names are not the scenario's to use
   * (the context sends `rtt` to the run's round-trip histogram before it comes here).
   */
  time(name: string, micros: number): void {
    let histogram = this.timings.get(name);
    if (!histogram) {
      checkName(name, 'timing');
      if ((HISTOGRAMS as readonly string[]).includes(name)) throw new SwarmError('script', `timing name ${name} is one of the run's own (${HISTOGRAMS.join(', ')}); of those a scenario may record rtt only`);
      if (!this.timingNames.has(name)) {
        if (this.timingNames.size >= MAX_NAMES) throw new SwarmError('script', `more than ${MAX_NAMES} timing names (a name per client or per value?): ${name}`);
        this.timingNames.add(name);
      }
      histogram = newHistogram();
      this.timings.set(name, histogram);
    }
    record(histogram, micros);
  }

  /** Counts one check of `name`. */
  check(name: string, passed: boolean): void {
    let count = this.checks[name];
    if (!count) {
      checkName(name, 'check');
      if (this.checkNames >= MAX_NAMES) throw new SwarmError('script', `more than ${MAX_NAMES} check names (a name per client or per value?): ${name}`);
      this.checkNames++;
      count = this.checks[name] = { passed: 0, failed: 0 };
    }
    if (passed) count.passed++;
    else count.failed++;
  }

  /** The interval's timings, encoded for the trip to the engine; the histograms start over. */
  takeTimings(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, histogram] of this.timings) {
      if (histogram.totalCount > 0) out[name] = hdr.encodeIntoCompressedBase64(histogram);
      histogram.reset();
    }
    return out;
  }
}

/** Timings by name, as the engine keeps them (per tick and for the run). */
export type TimingSet = Map<string, Histogram>;

/** Adds a worker's encoded timings into each of `sets`, decoding each once. */
export function mergeTimings(sets: TimingSet[], encoded: Record<string, string> | undefined): void {
  for (const [name, text] of Object.entries(encoded ?? {})) {
    const decoded = hdr.decodeFromCompressedBase64(text);
    for (const set of sets) {
      let into = set.get(name);
      if (!into) set.set(name, (into = newHistogram()));
      into.add(decoded);
    }
    decoded.destroy();
  }
}

/** Adds checks `from` into `into`. */
export function addChecks(into: Checks, from: Checks | undefined): Checks {
  for (const [name, count] of Object.entries(from ?? {})) {
    const total = (into[name] ??= { passed: 0, failed: 0 });
    total.passed += count.passed;
    total.failed += count.failed;
  }
  return into;
}

/** Every check together: passed, failed, and the share passed (null when none ran). */
export type CheckTotals = CheckCount & { rate: number | null };

export function checkTotals(checks: Checks): CheckTotals {
  let passed = 0;
  let failed = 0;
  for (const count of Object.values(checks)) {
    passed += count.passed;
    failed += count.failed;
  }
  return { passed, failed, rate: passed + failed > 0 ? passed / (passed + failed) : null };
}
