/** What every load benchmark does around a swarm run: its command line, progress, CSVs, the printed summary. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { Swarm, type RunSummary } from '../../clients/engine.js';
import type { SwarmOptions } from '../../clients/options.js';
import { attachCsv } from '../../clients/output/csv.js';
import { attachProgress } from '../../clients/output/progress.js';
import { summaryLines } from '../../clients/output/summary.js';

export interface BenchRun {
  summary: RunSummary;
  /** The CSV files written, when `csv` was given. */
  files: string[];
}

/** Runs one swarm against `url`, printing progress and the summary; with `csv`, writes timeline and summary. */
export async function runSwarm(
  label: string,
  options: Partial<SwarmOptions>,
  csv?: { dir: string; name: string; history?: boolean },
  quiet = false,
): Promise<BenchRun> {
  const swarm = new Swarm(options);
  if (!quiet) attachProgress(swarm);
  const paths = csv ? attachCsv(swarm, { ...csv, label }) : null;
  const summary = await swarm.run();
  if (!quiet) for (const line of summaryLines(summary, label)) console.log(line);
  const files = paths ? [paths.timeline, paths.summary, ...(paths.history ? [paths.history] : [])] : [];
  return { summary, files };
}

/** Numeric yargs flags keep a bad value as text, so the message can quote it. */
export const numeric = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.at(-1);
  return typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)) ? Number(value) : value;
};

/** Where results go by default: the repository's results/ folder. */
export const RESULTS_DIR = new URL('../../../results/', import.meta.url).pathname;

/**
 * The command line every benchmark shares: strict flags, `--help`, and a bad flag exiting 2 with a
 * message that names it. Each benchmark adds its own options.
 */
export function benchCli(name: string, usage: string) {
  return yargs(hideBin(process.argv))
    .scriptName(name)
    .usage(usage)
    .strict()
    .help()
    .alias('help', 'h')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((message, err) => {
      console.error(`${name}: ${err?.message ?? message}\nRun with --help for the flags.`);
      process.exit(2);
    });
}
