/**
 * `--data FILE`: a CSV file whose header line names the fields; client i gets row i mod rows as
 * `ctx.data` (clients/swarm/scenario-api.ts). Parsed by csv-parse (quoted fields, embedded commas and
 * line breaks, a byte-order mark, CRLF), once per worker: every worker holds the whole file.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { ScenarioFileError } from './load.js';

export type DataRow = Readonly<Record<string, string>>;

/** The rows of `path`; throws an Error saying what is wrong with the file. */
export function readDataRows(path: string): DataRow[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ScenarioFileError(`--data ${path}: cannot read it (${(err as Error).message})`);
  }
  let rows: Record<string, string>[];
  try {
    rows = parse(text, { columns: true, skip_empty_lines: true, bom: true });
  } catch (err) {
    throw new ScenarioFileError(`--data ${path}: not CSV with a header line (${(err as Error).message})`);
  }
  if (rows.length === 0) throw new ScenarioFileError(`--data ${path}: no rows under its header line`);
  return rows;
}
