/**
 * `make bench-vs-artillery`: the swarm side by side with Artillery 2 (npm `artillery`, installed by this
 * bench alone into a cache folder outside the checkout, once) on one flow written for both
 * (bench/artillery/flow.ts and flow.yml: subscribe to a channel of one's own, then 10 times wait a
 * second, publish on it and wait for the message to come back, close), against our server at the same
 * arrival rate of virtual users, one tool after the other.
 *
 * For each: CPU of the whole tool (every process and thread it ran, read from /proc when it has exited
 * and been reaped: this process's children's CPU), per virtual user; memory per virtual user (the
 * tool's RSS, all its processes, at its peak less before its first connection, over the most virtual
 * users connected at once, as the server counted them); which side ran out of CPU (the busiest process
 * of the tool and of the server, each second); and what each reports: the swarm the echo of
 * every message (p50, p99, max), Artillery its counters and each virtual user's session length (its
 * WebSocket engine times no message: artilleryio/artillery#225). Writes results/vs-artillery-<stamp>.csv
 * and prints the ratios.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkHost } from '../clients/host/host-check.js';
import { busiestPct, childPids, processCpuMicros, sampleProcess, sampleTree, type TreeSample } from '../clients/host/proc.js';
import { saturation, type Saturation } from '../clients/swarm/saturation.js';
import { hostColumns, stamp, writeCsv, type Row } from '../clients/swarm/output/csv.js';
import { BENCH_HOST_CHECK_S, benchCli, finishBench, numeric, RESULTS_DIR } from './lib/run.js';
import { startServerProcess, type ServerProcess } from './lib/servers.js';
import { PUBLISHES, THINK_MS } from './artillery/flow.js';

/** The Artillery this bench compares with: pinned, as every dependency is. */
const ARTILLERY_VERSION = '2.0.34';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FLOW_YAML = join(ROOT, 'bench/artillery/flow.yml');
const FLOW_SWARM = fileURLToPath(new URL('./artillery/flow.js', import.meta.url));
const SWARM_CLI = fileURLToPath(new URL('../clients/cli.js', import.meta.url));
/** How often the tools' memory and the server's connections are sampled, ms. */
const SAMPLE_MS = 100;

const args = await benchCli('bench-vs-artillery', `$0 [flags]\n\nThe swarm and Artillery ${ARTILLERY_VERSION} on one flow (subscribe, ${PUBLISHES} publishes ${THINK_MS / 1000} s apart each waiting for its\nmessage, close) at the same arrival rate against our server: CPU and memory per virtual user, and what\neach reports. Installs Artillery into --artillery-dir the first time (about a minute, 460 MB).`)
  .option('rate', { coerce: numeric, requiresArg: true, default: 50, describe: 'new virtual users per second, both tools' })
  .option('duration', { coerce: numeric, requiresArg: true, default: 20, describe: 'seconds of arrivals, both tools (each virtual user then runs its flow, about 10 s)' })
  .option('artillery-dir', { type: 'string', default: join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'uws-pubsub-bench', `artillery-${ARTILLERY_VERSION}`), describe: 'where Artillery is installed (npm install --prefix), outside the checkout' })
  .option('out', { type: 'string', default: RESULTS_DIR, describe: 'directory for vs-artillery-<stamp>.csv' })
  .check((a) => {
    if (typeof a.rate !== 'number' || !(a.rate > 0) || a.rate > 2000) throw new Error(`--rate must be new virtual users per second above 0, at most 2000 (got ${String(a.rate)})`);
    if (typeof a.duration !== 'number' || !(a.duration >= 1) || a.duration > 600) throw new Error(`--duration must be seconds from 1 to 600 (got ${String(a.duration)})`);
    return true;
  })
  .parseAsync();

interface Measured {
  tool: 'swarm' | 'artillery';
  code: number | null;
  cpuS: number;
  wallS: number;
  restRssBytes: number;
  peakRssBytes: number;
  peakConcurrent: number;
  /** The busiest process of each side in any second, % of one core, and which side ran out of CPU. */
  toolCpuMaxPct: number;
  serverCpuMaxPct: number;
  saturated: Saturation;
  output: string;
}

/** Installs Artillery into `dir` unless it is there; resolves with its command's path. */
async function artillery(dir: string): Promise<string> {
  const bin = join(dir, 'node_modules', 'artillery', 'bin', 'run');
  const installed = join(dir, 'node_modules', 'artillery', 'package.json');
  if (existsSync(installed) && JSON.parse(readFileSync(installed, 'utf8')).version === ARTILLERY_VERSION) return bin;
  mkdirSync(dir, { recursive: true });
  console.log(`installing artillery@${ARTILLERY_VERSION} into ${dir} (once; about a minute)`);
  const code = await new Promise<number | null>((resolve) => {
    const npm = spawn('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel', 'error', `artillery@${ARTILLERY_VERSION}`], { stdio: 'inherit' });
    npm.once('exit', resolve);
    npm.once('error', () => resolve(-1));
  });
  if (code !== 0 || !existsSync(bin)) throw new Error(`npm install artillery@${ARTILLERY_VERSION} into ${dir} failed (exit ${code}); the comparison needs it`);
  return bin;
}

/** Every process of a tree (the root, its children, theirs). */
function tree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...childPids(all[i]));
  return all;
}

/**
 * Runs one tool as a child and measures it: its CPU is what this process's reaped children gained
 * (the tool and every process it waited for), its memory the RSS of its whole tree, sampled, and the
 * virtual users at once what the server counted connected.
 */
async function measure(tool: Measured['tool'], command: string[], server: ServerProcess): Promise<Measured> {
  const reapedBefore = processCpuMicros()!.reaped;
  const started = Date.now();
  const child = spawn(process.execPath, command, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let rest = 0;
  let peak = 0;
  let peakConcurrent = 0;
  let running = true;
  void exited.then(() => (running = false));
  const cpu = new SideCpu(child.pid!, server.pid);
  while (running) {
    cpu.sample();
    const rss = tree(child.pid!).reduce((sum, pid) => sum + (sampleProcess(pid)?.rssBytes ?? 0), 0);
    const connections = Number((await server.stats().catch(() => ({ connections: 0 }))).connections) || 0;
    // The tool's own footprint is what it holds before its first virtual user connects.
    if (peakConcurrent === 0 && connections === 0) rest = Math.max(rest, rss);
    peak = Math.max(peak, rss);
    peakConcurrent = Math.max(peakConcurrent, connections);
    await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
  }
  const code = await exited;
  return {
    tool, code, cpuS: (processCpuMicros()!.reaped - reapedBefore) / 1e6, wallS: (Date.now() - started) / 1000, restRssBytes: rest, peakRssBytes: peak, peakConcurrent,
    toolCpuMaxPct: cpu.toolMax, serverCpuMaxPct: cpu.serverMax, saturated: saturation(cpu.serverMax, cpu.toolMax, cpu.machineMax), output,
  };
}

/**
 * Each side's CPU by the second: the busiest process of the tool's tree and of the server's, and both
 * together, for the saturation verdict (saturation.ts) every bench gives.
 */
class SideCpu {
  toolMax = 0;
  serverMax = 0;
  machineMax = 0;
  private last: { at: number; tool: Map<number, number>; server: TreeSample | null } | null = null;

  constructor(
    private readonly toolPid: number,
    private readonly serverPid: number,
  ) {}

  /** Takes a sample; a second after the last one, turns the difference into shares of a core. */
  sample(): void {
    const at = performance.now();
    if (this.last && at - this.last.at < 1000) return;
    const tool = new Map(tree(this.toolPid).map((pid) => [pid, sampleProcess(pid)?.cpuMicros ?? 0]));
    const server = sampleTree(this.serverPid);
    if (this.last && server && this.last.server) {
      const elapsed = (at - this.last.at) * 1000;
      let toolSum = 0;
      for (const [pid, micros] of tool) {
        const share = ((micros - (this.last.tool.get(pid) ?? micros)) / elapsed) * 100;
        toolSum += share;
        this.toolMax = Math.max(this.toolMax, share);
      }
      this.serverMax = Math.max(this.serverMax, busiestPct(this.last.server, server, elapsed));
      this.machineMax = Math.max(this.machineMax, toolSum + ((server.cpuMicros - this.last.server.cpuMicros) / elapsed) * 100);
    }
    this.last = { at, tool, server };
  }
}

const rate = args.rate as number;
const duration = args.duration as number;
const expected = Math.round(rate * duration);
const scratch = mkdtempSync(join(tmpdir(), 'vs-artillery-'));
const bin = await artillery(args.artilleryDir);
const host = await checkHost(BENCH_HOST_CHECK_S);
console.log(`host: reference work ${Math.round(host.referenceMs)} ms, stalled ${host.stalledPct.toFixed(1)}%`);
const server = await startServerProcess('ours');
let results: Measured[] = [];
let artilleryReport: { counters: Record<string, number>; summaries: Record<string, Record<string, number>> } | null = null;
let swarmReport: { summary: { counters: { completed: number; errors: Record<string, number> }; timings: Record<string, Record<string, number>>; connect: Record<string, number> | null } } | null = null;
try {
  console.log(`bench-vs-artillery: ${rate} virtual users a second for ${duration} s (${expected} in all), each ${PUBLISHES} publishes ${THINK_MS / 1000} s apart, against ${server.url} (${server.engine})`);
  const reportPath = join(scratch, 'artillery.json');
  const overrides = JSON.stringify({ config: { phases: [{ duration, arrivalRate: rate }] } });
  console.log('== artillery');
  const art = await measure('artillery', [bin, 'run', '--quiet', '--target', `${server.url}/pubsub`, '--overrides', overrides, '--output', reportPath, FLOW_YAML], server);
  if (existsSync(reportPath)) artilleryReport = JSON.parse(readFileSync(reportPath, 'utf8')).aggregate;
  const summaryPath = join(scratch, 'swarm.json');
  console.log('== swarm');
  const ours = await measure('swarm', [SWARM_CLI, '--url', server.url, '--scenario', FLOW_SWARM, '--stage', `${duration}s:${rate}->${rate}/s`, '--summary-json', summaryPath], server);
  if (existsSync(summaryPath)) swarmReport = JSON.parse(readFileSync(summaryPath, 'utf8'));
  results = [art, ours];
} finally {
  await server.stop();
}

const [art, ours] = results;
const perVu = (m: Measured, created: number) => ({
  cpuMs: created > 0 ? (m.cpuS * 1000) / created : null,
  memKiB: m.peakConcurrent > 0 ? (m.peakRssBytes - m.restRssBytes) / m.peakConcurrent / 1024 : null,
});
const artCreated = artilleryReport?.counters['vusers.created'] ?? 0;
const oursCreated = swarmReport ? swarmReport.summary.counters.completed + Object.values(swarmReport.summary.counters.errors).reduce((a, b) => a + b, 0) : 0;
const artPer = perVu(art, artCreated);
const oursPer = perVu(ours, oursCreated);
const echo = swarmReport?.summary.timings.echo ?? null;
const session = artilleryReport?.summaries['vusers.session_length'] ?? null;
const row = (m: Measured, created: number, completed: number, failed: number, per: ReturnType<typeof perVu>, reports: Row): Row => ({
  tool: m.tool,
  version: m.tool === 'artillery' ? ARTILLERY_VERSION : 'this checkout',
  rate_per_s: rate,
  duration_s: duration,
  virtual_users: created,
  completed,
  failed,
  exit_code: m.code,
  wall_s: Math.round(m.wallS * 10) / 10,
  cpu_s: Math.round(m.cpuS * 1000) / 1000,
  cpu_ms_per_vu: per.cpuMs === null ? null : Math.round(per.cpuMs * 1000) / 1000,
  rss_rest_mib: Math.round((m.restRssBytes / 2 ** 20) * 10) / 10,
  rss_peak_mib: Math.round((m.peakRssBytes / 2 ** 20) * 10) / 10,
  peak_concurrent_vus: m.peakConcurrent,
  kib_per_concurrent_vu: per.memKiB === null ? null : Math.round(per.memKiB * 10) / 10,
  tool_cpu_max_pct: Math.round(m.toolCpuMaxPct),
  server_cpu_max_pct: Math.round(m.serverCpuMaxPct),
  saturated: m.saturated,
  ...reports,
  ...hostColumns(host),
});
const rows: Row[] = [
  row(art, artCreated, artilleryReport?.counters['vusers.completed'] ?? 0, artilleryReport?.counters['vusers.failed'] ?? 0, artPer, {
    message_timings: 'none (its WebSocket engine times no message)',
    echo_p50_ms: null, echo_p99_ms: null, echo_max_ms: null,
    session_p50_ms: session?.p50 ?? null, session_p99_ms: session?.p99 ?? null,
    messages_sent: artilleryReport?.counters['websocket.messages_sent'] ?? null,
  }),
  row(ours, oursCreated, swarmReport?.summary.counters.completed ?? 0, swarmReport ? oursCreated - swarmReport.summary.counters.completed : 0, oursPer, {
    message_timings: `every echo (${echo?.count ?? 0})`,
    echo_p50_ms: echo?.p50 ?? null, echo_p99_ms: echo?.p99 ?? null, echo_max_ms: echo?.max ?? null,
    session_p50_ms: null, session_p99_ms: null,
    messages_sent: null,
  }),
];
mkdirSync(args.out, { recursive: true });
const path = join(args.out, `vs-artillery-${stamp()}.csv`);
writeCsv(path, rows);

const fmt = (value: number | null, digits: number): string => (value === null ? 'N/A' : value.toFixed(digits));
for (const r of rows) {
  console.log(`${String(r.tool).padEnd(9)} ${r.virtual_users} virtual users (${r.completed} completed, ${r.failed} failed), ${r.cpu_s} s of CPU = ${r.cpu_ms_per_vu ?? 'N/A'} ms per virtual user; RSS ${r.rss_rest_mib} -> ${r.rss_peak_mib} MiB with ${r.peak_concurrent_vus} at once = ${r.kib_per_concurrent_vu ?? 'N/A'} KiB per virtual user; busiest process: its own ${r.tool_cpu_max_pct}%, the server's ${r.server_cpu_max_pct}% of a core; saturated: ${r.saturated}`);
}
console.log(`swarm     reports every echo: p50 ${fmt(echo?.p50 ?? null, 2)} ms, p99 ${fmt(echo?.p99 ?? null, 2)} ms, max ${fmt(echo?.max ?? null, 2)} ms (${echo?.count ?? 0} timed)`);
console.log(`artillery reports counters (sent ${artilleryReport?.counters['websocket.messages_sent'] ?? '?'}, received ${artilleryReport?.counters['websocket.messages_received'] ?? '?'}) and the session length (p50 ${fmt(session?.p50 ?? null, 0)} ms, p99 ${fmt(session?.p99 ?? null, 0)} ms): no message's time`);
const ratio = (a: number | null, b: number | null): string => (a !== null && b !== null && b > 0 ? `${(a / b).toFixed(2)}x` : 'N/A');
console.log(`ratios (artillery / swarm): CPU per virtual user ${ratio(artPer.cpuMs, oursPer.cpuMs)}, memory per virtual user ${ratio(artPer.memKiB, oursPer.memKiB)}`);
console.log(`csv: ${path}`);
writeFileSync(join(scratch, 'outputs.txt'), `${art.output}\n----\n${ours.output}`);
const failed = art.code !== 0 || ours.code !== 0 || artCreated !== expected || oursCreated !== expected;
if (failed) console.log(`a tool did not run its ${expected} virtual users cleanly: artillery exit ${art.code} (${artCreated} created), swarm exit ${ours.code} (${oursCreated}); their output: ${join(scratch, 'outputs.txt')}`);
finishBench(args, failed);
