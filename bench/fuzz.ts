/**
 * `make fuzz`: the long fuzz run. Our server as a child process; first the bystanders alone (quiet),
 * then the same bystanders while the fuzzer, in a process of its own, sends --inputs seeded cases at
 * the JSON, WebSocket-frame and HTTP levels. PASS when every input got its answer, the server is alive
 * and healthy, every /stats counter grew by what was sent of its kind, open files came back, RSS
 * stayed near, the bystanders lost nothing and their p99 stayed within 2x of the quiet run.
 * Writes results/fuzz-<stamp>.csv (one row) and appends it to results/fuzz-history.csv.
 */
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { attack } from '../clients/fuzz/attack.js';
import { startBystanders } from '../clients/fuzz/bystanders.js';
import type { FuzzReport } from '../clients/fuzz/runner.js';
import { checkHost, hostLine } from '../clients/host/host-check.js';
import { CHECK_FILES, sampleProcess } from '../clients/host/proc.js';
import { requireIntegers } from '../server/command-line.js';
import { appendHistory, hostColumns, stamp, writeCsv } from '../clients/swarm/output/csv.js';
import { interruptible, interruptibleSleep } from '../clients/host/interrupt.js';
import { BENCH_HOST_CHECK_S, benchCli, finishBench, interrupted, numeric, RESULTS_DIR } from './lib/run.js';
import { startServerProcess } from './lib/servers.js';
import { serverArgs } from '../server/options.js';

const MIB = 1024 * 1024;
/** The fuzzer's scheduling priority (see fuzzInChild). */
const FUZZER_NICE = 19;
const FUZZ_CLI = fileURLToPath(new URL('../clients/fuzz/cli.js', import.meta.url));

const args = await benchCli('fuzz', '$0 [flags]\n\nThe long fuzz run: hostile input at three levels while other clients publish and receive.')
  .option('inputs', { coerce: numeric, requiresArg: true, default: 100_000, describe: 'cases the fuzzer sends' })
  .option('seed', { coerce: numeric, requiresArg: true, default: Date.now() % 1_000_000, defaultDescription: 'from the clock (printed; pass it to replay)', describe: 'seed of the inputs' })
  .option('concurrency', { coerce: numeric, requiresArg: true, default: 8, describe: 'cases the fuzzer keeps in flight (more: faster, and a busier machine for the bystanders)' })
  .option('quiet-seconds', { coerce: numeric, requiresArg: true, default: 20, describe: 'seconds the bystanders run alone first, for the quiet p99' })
  .option('out', { type: 'string', default: RESULTS_DIR, describe: 'directory for the CSVs' })
  .parseAsync();
requireIntegers('fuzz', [['--inputs', args.inputs, 1], ['--concurrency', args.concurrency, 1], ['--quiet-seconds', args.quietSeconds, 1], ['--seed', args.seed, 0]]);

const key = 'fuzz';
const host = await checkHost(BENCH_HOST_CHECK_S);
console.log(hostLine(host));
const server = await startServerProcess('ours', serverArgs({ publishKey: key }));
let pass = false;
try {
  console.log(`fuzz: server pid ${server.pid} on port ${server.port} (${server.engine}); seed ${args.seed}`);
  console.log(`fuzz: ${args.quietSeconds} s of bystanders alone...`);
  const quietRun = await startBystanders(server.url);
  await interruptibleSleep((args.quietSeconds as number) * 1000);
  const quiet = await quietRun.stop();
  console.log(`fuzz: quiet p50 ${quiet.p50Ms.toFixed(2)} ms, p99 ${quiet.p99Ms.toFixed(2)} ms over ${quiet.received} copies`);

  const fuzzInChild = async (): Promise<FuzzReport> => {
    const child = promisify(execFile)(process.execPath, [FUZZ_CLI, '--port', String(server.port), '--inputs', String(args.inputs), '--seed', String(args.seed), '--concurrency', String(args.concurrency), '--publish-key', key], { maxBuffer: 256 * MIB });
    child.child.stderr!.pipe(process.stderr);
    // The fuzzer stands for a client on another machine: here it shares two cores with the server and
    // the bystanders, and at full speed it takes the CPU the bystanders' own process needs to time
    // their copies, which is not a cost the server puts on them. At the lowest priority it runs on
    // what the two leave, as a remote attacker would; the server still handles every input.
    setPriority(child.child.pid!, FUZZER_NICE);
    // Ctrl-C in a terminal reaches the fuzzer too; a signal sent to this process alone is passed on.
    const done = interruptible({ interrupt: () => child.child.kill('SIGINT') });
    const { stdout } = await child.finally(done);
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as FuzzReport;
  };
  const cpuBefore = sampleProcess(server.pid);
  const result = await attack(server.pid, server.port, fuzzInChild);
  const cpuAfter = sampleProcess(server.pid);
  const serverCpuPct = cpuBefore && cpuAfter ? ((cpuAfter.cpuMicros - cpuBefore.cpuMicros) / 1000 / result.fuzz.durationMs) * 100 : NaN;
  const { fuzz, bystanders } = result;
  const ratio = bystanders.p99Ms / quiet.p99Ms;
  const checks: [string, boolean, string][] = [
    ['every input answered as it must be', fuzz.mismatches.length === 0, `${fuzz.inputs} inputs, ${fuzz.mismatches.length} mismatches`],
    ['server alive, /health 200', result.alive && result.healthStatus === 200, `alive ${result.alive}, /health ${result.healthStatus}`],
    ['every counter grew by what was sent of its kind', result.counterDifferences.length === 0, result.counterDifferences.join('; ') || 'all equal'],
    ['open files back', result.filesAfter <= result.filesBefore + CHECK_FILES, `${result.filesBefore} -> ${result.filesAfter}`],
    ['RSS near its start (< +64 MiB)', result.rssAfter - result.rssBefore < 64 * MIB, `${(result.rssBefore / MIB).toFixed(1)} -> ${(result.rssAfter / MIB).toFixed(1)} MiB`],
    ['bystanders lost nothing', bystanders.missing === 0 && bystanders.acked === bystanders.sent, `${bystanders.acked}/${bystanders.sent} acked, ${bystanders.missing} missing`],
    ['bystanders p99 within 2x of quiet', ratio <= 2, `${bystanders.p99Ms.toFixed(2)} ms against ${quiet.p99Ms.toFixed(2)} ms (${ratio.toFixed(2)}x)`],
  ];
  console.log(`\nfuzz: ${fuzz.inputs} inputs in ${(fuzz.durationMs / 1000).toFixed(1)} s (${Math.round(fuzz.inputs / (fuzz.durationMs / 1000))}/s): ${JSON.stringify(fuzz.byLevel)}; server CPU ${serverCpuPct.toFixed(0)}% of a core meanwhile`);
  for (const m of fuzz.mismatches.slice(0, 10)) console.log(`  mismatch ${m.level}:${m.name}: expected ${JSON.stringify(m.expected)}, got ${m.got}`);
  for (const [what, ok, detail] of checks) console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${what}: ${detail}`);
  pass = checks.every(([, ok]) => ok) && !fuzz.interrupted;
  console.log(fuzz.interrupted ? `fuzz: INTERRUPTED (${interrupted()}) after ${fuzz.inputs} of ${args.inputs} inputs: the checks above cover those` : pass ? 'fuzz: PASS' : 'fuzz: FAIL');
  const run = `fuzz-${stamp()}`;
  const row = {
    run,
    seed: args.seed as number,
    inputs: fuzz.inputs,
    json_inputs: fuzz.byLevel.json ?? 0,
    frame_inputs: fuzz.byLevel.frame ?? 0,
    http_inputs: fuzz.byLevel.http ?? 0,
    duration_ms: Math.round(fuzz.durationMs),
    mismatches: fuzz.mismatches.length,
    counter_differences: result.counterDifferences.length,
    alive: result.alive ? 1 : 0,
    health_status: result.healthStatus,
    rss_before_mib: Math.round((result.rssBefore / MIB) * 10) / 10,
    rss_after_mib: Math.round((result.rssAfter / MIB) * 10) / 10,
    files_before: result.filesBefore,
    files_after: result.filesAfter,
    bystanders_missing: bystanders.missing,
    quiet_p50_ms: Math.round(quiet.p50Ms * 100) / 100,
    quiet_p99_ms: Math.round(quiet.p99Ms * 100) / 100,
    fuzz_p50_ms: Math.round(bystanders.p50Ms * 100) / 100,
    fuzz_p99_ms: Math.round(bystanders.p99Ms * 100) / 100,
    p99_ratio: Math.round(ratio * 100) / 100,
    concurrency: args.concurrency as number,
    fuzzer_nice: FUZZER_NICE,
    server_cpu_pct: Math.round(serverCpuPct),
    pass: fuzz.interrupted ? 'INTERRUPTED' : pass ? 'PASS' : 'FAIL',
    ...hostColumns(host),
  };
  mkdirSync(args.out, { recursive: true });
  writeCsv(join(args.out, `${run}.csv`), [row]);
  appendHistory(join(args.out, 'fuzz-history.csv'), row);
  console.log(`fuzz: wrote ${join(args.out, `${run}.csv`)}`);
} finally {
  await server.stop();
}
finishBench(args, !pass);
