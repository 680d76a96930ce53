/** What every load benchmark does around a swarm run: its command line, progress, CSVs, the printed summary. */
import { commandLine } from '../../server/command-line.js';
import { Swarm, type RunSummary } from '../../clients/swarm/swarm.js';
import { catchInterrupts, interrupted, interruptible } from '../../clients/host/interrupt.js';
import type { SwarmOptions } from '../../clients/swarm/options.js';
import { attachCsv } from '../../clients/swarm/output/csv.js';
import { attachProgress } from '../../clients/swarm/output/progress.js';
import { summaryLines } from '../../clients/swarm/output/summary.js';
import { reportHtml, reportSections } from '../../clients/swarm/output/report.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BenchRun {
  summary: RunSummary;
  /** The CSV files written, when `csv` was given. */
  files: string[];
}

/**
 * Runs one swarm against `url`, printing progress and the summary; with `csv`, writes timeline and summary;
 * `listen` may subscribe to the swarm's events before it starts. Ctrl-C ends the run early with its
 * figures so far (clients/host/interrupt.ts): a bench asks `interrupted()` before each further step.
 * Every bench run starts with a 1 s host check (clients/host/host-check.ts) unless `options` says otherwise.
 */
export async function runSwarm(
  label: string,
  options: Partial<SwarmOptions>,
  csv?: { dir: string; name: string; history?: boolean },
  quiet = false,
  listen?: (swarm: Swarm) => void,
): Promise<BenchRun> {
  const swarm = new Swarm({ hostCheck: BENCH_HOST_CHECK_S, ...options });
  listen?.(swarm);
  if (!quiet) attachProgress(swarm);
  const paths = csv ? attachCsv(swarm, { ...csv, label }) : null;
  catchInterrupts();
  const done = interruptible(swarm);
  const summary = await swarm.run().finally(done);
  if (!quiet) for (const line of summaryLines(summary, label)) console.log(line);
  const files = paths ? [paths.timeline, paths.summary, ...(paths.history ? [paths.history] : [])] : [];
  return { summary, files };
}

/** Seconds of host check before each bench run: enough to catch a host that withholds a few % of its cores. */
export const BENCH_HOST_CHECK_S = 1;

/** Numeric flags keep a bad value as text, so the message can quote it. */
export { numeric } from '../../server/command-line.js';

/** Where results go by default: the repository's results/ folder. */
export const RESULTS_DIR = new URL('../../../results/', import.meta.url).pathname;

/** The command line every benchmark shares (see server/command-line.ts); each adds its own options. */
export function benchCli(name: string, usage: string) {
  return commandLine(name, usage).option('report', {
    type: 'boolean',
    default: false,
    describe: 'when done, also write results/report.html: charts of every kind of run in results/ (as make report)',
  });
}

/** Writes `<dir>/report.html` from the CSVs in `dir` and says where, with the sections it has. */
export function writeReport(dir: string): string {
  const sections = reportSections(dir);
  const path = join(dir, 'report.html');
  writeFileSync(path, reportHtml(sections));
  console.log(`report: ${path} (${sections.length === 0 ? 'no results yet' : sections.map((s) => s.id).join(', ')})`);
  return path;
}

/** A bench's last step: the report when `--report` was given (in the bench's --out directory). */
function reportIfAsked(args: { report?: unknown; out?: unknown }): void {
  if (args.report === true) writeReport(typeof args.out === 'string' ? args.out : RESULTS_DIR);
}

export { interrupted };

/**
 * The value of a flag that has a `--quick` form: what was given, else the short default under `--quick`
 * and the full one without. Such flags have no yargs default (their help names both), so that a given
 * value always wins over `--quick`.
 */
export function quickOr<T>(quick: boolean, given: T | undefined, full: T, short: T): T {
  return given ?? (quick ? short : full);
}

/** The line every load bench prints after a run: which side ran out of CPU, with both peaks. */
export function saturationLine(summary: RunSummary, label = ''): string {
  return `which side was saturated${label ? ` (${label})` : ''}: ${summary.saturated} (server cpu max ${Math.round(summary.server?.cpuMaxPct ?? NaN)}%, busiest swarm process ${Math.round(summary.clientCpuMaxPct)}%)`;
}

/** The line every bench ends a run with: the CSV files it wrote. */
export function csvLine(files: readonly string[]): string {
  return `csv: ${files.join(', ')}`;
}

/** A bench's exit code: 130 when Ctrl-C stopped it (after its summary), else 1 on a failed target, 0 otherwise. */
export function exitCode(failed: boolean): number {
  return interrupted() ? 130 : failed ? 1 : 0;
}

/**
 * A bench's last step, the same for every bench: the report when `--report` was given, then exit with
 * {@link exitCode}. The comparisons (bench-broadcast, -http, -redis) pass `failed` false: their targets
 * say how the servers compare, and a run that measured is a success.
 */
export function finishBench(args: { report?: unknown; out?: unknown }, failed: boolean): never {
  reportIfAsked(args);
  process.exit(exitCode(failed));
}
