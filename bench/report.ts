/**
 * `make report`: results/report.html, one self-contained page of charts built from the CSVs in
 * results/ (clients/output/report.ts). Every benchmark writes it too when given `--report`.
 */
import { benchCli, RESULTS_DIR, writeReport } from './lib/run.js';

const args = await benchCli('report', '$0 [flags]\n\nBuilds one self-contained HTML page of charts from the CSVs in results/.')
  .option('results', { type: 'string', default: RESULTS_DIR, describe: 'directory of the CSVs; the report is written there as report.html' })
  .parseAsync();
writeReport(args.results as string);
