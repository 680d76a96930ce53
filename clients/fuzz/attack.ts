/**
 * A whole fuzz session against one running server, as `make fuzz` and the test suite run it: the
 * server's counters, memory and open files before; bystanders publishing and receiving meanwhile; the
 * fuzzer; then, once the server has settled, whether it is alive and healthy, whether memory and
 * files came back, and whether every counter grew by what the fuzzer sent of its kind.
 */
import { CHECK_FILES, openFileCount, sampleProcess } from '../host/proc.js';
import { startBystanders, type BystanderReport } from './bystanders.js';
import { counterDifferences, type FuzzReport } from './runner.js';

export interface AttackResult {
  fuzz: FuzzReport;
  bystanders: BystanderReport;
  /** Counters whose growth differs from what the fuzzer sent (empty: all agree). */
  counterDifferences: string[];
  healthStatus: number;
  rssBefore: number;
  rssAfter: number;
  filesBefore: number;
  filesAfter: number;
  /** Whether the server process was still there at the end. */
  alive: boolean;
}

async function stats(base: string): Promise<Record<string, any>> {
  return (await fetch(`${base}/stats`)).json() as Promise<Record<string, any>>;
}

/**
 * Runs the fuzzer against the server `pid` on `port`, with bystanders, and checks the aftermath.
 * `fuzz` runs the fuzzer: in this process (runFuzz) or in another, so that its work does not show in
 * the bystanders' latency.
 */
export async function attack(pid: number, port: number, fuzz: () => Promise<FuzzReport>, settleMs = 10_000): Promise<AttackResult> {
  const http = `http://127.0.0.1:${port}`;
  const before = await stats(http);
  const rssBefore = sampleProcess(pid)?.rssBytes ?? NaN;
  const filesBefore = openFileCount(pid) ?? NaN;
  const bystanders = await startBystanders(`ws://127.0.0.1:${port}`);
  const report = await fuzz();
  const bystanderReport = await bystanders.stop();
  // The bystanders' clean closes count too; closes the server sees late (a dropped socket) settle here.
  const expected = { ...report.expected, closes: { ...report.expected.closes, normal: report.expected.closes.normal + bystanderReport.connections } };
  let differences = counterDifferences(before, await stats(http), expected);
  const deadline = Date.now() + settleMs;
  while ((differences.length > 0 || (openFileCount(pid) ?? 0) > filesBefore + CHECK_FILES) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    differences = counterDifferences(before, await stats(http), expected);
  }
  const health = await fetch(`${http}/health`);
  return {
    fuzz: report,
    bystanders: bystanderReport,
    counterDifferences: differences,
    healthStatus: health.status,
    rssBefore,
    rssAfter: sampleProcess(pid)?.rssBytes ?? NaN,
    filesBefore,
    filesAfter: openFileCount(pid) ?? NaN,
    alive: sampleProcess(pid) !== null,
  };
}
