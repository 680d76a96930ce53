/**
 * `make report`: results/report.html, one self-contained page of charts built from the CSVs in
 * results/ (clients/swarm/output/report.ts). Every benchmark writes it too when given `--report`.
 */
import { commandLine } from '../server/command-line.js';
import { RESULTS_DIR, writeReport } from './lib/run.js';

// Not benchCli: its --report would mean nothing here.
const args = await commandLine('report', '$0 [flags]\n\nBuilds one self-contained HTML page of charts from the CSVs in results/.')
  .option('results', { type: 'string', default: RESULTS_DIR, describe: 'directory of the CSVs; the report is written there as report.html' })
  .parseAsync();
writeReport(args.results as string);
