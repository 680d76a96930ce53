/**
 * `make bench-swarm`: what the swarm itself costs in CPU, measured against the cheapest server we have
 * (bench/bare-uws.ts), so that the figures are the load generator's. Three runs:
 *
 * - sequence: the C10k echo sequence in short (5,000 clients over 10 s, each: connect, 3 x (wait 1 s,
 *   send, read the echo), goodbye, close); the CPU of every swarm process over the whole run, workers'
 *   start-up included, divided by the clients: ms of CPU per echo client sequence.
 * - phases: the same sequence with its phases apart in time (connects over 4 s, rounds 6 s apart); CPU
 *   read from /proc every 100 ms. The middle 3 s of each phase, less the idle rate read in the gaps
 *   between phases, divided by the clients whose slot fell in it, gives CPU per connect (welcome
 *   included), per echo round trip (rounds 1 and 2), and per close (round 3 less a round trip: the
 *   goodbye and the closing handshake).
 * - broadcast: subscribers receive one publisher's messages at a fixed rate; CPU per received frame
 *   over the seconds in which every copy arrived at the offered rate, less the idle rate.
 *
 * The sequence and broadcast runs are also made by bench/lib/floor-client.ts, the least a Node client can
 * do for them (no checks, no figures): the floors under which no Node load generator goes on this boot.
 * The sequence is also run with one client for as long, by the swarm and by the floor: a run's own CPU
 * (start-up, reports, the end), which the per-sequence figure spreads over the clients; the sequence's
 * CPU less it, over the other clients, is what each client adds at this load (fewer clients a second
 * cost more each: the loop wakes for fewer events at a time).
 *
 * The swarm is this process (the engine) and its children other than the server. `--against DIR` runs
 * each of the three with the swarm of another built checkout too (DIR/dist/clients/swarm/swarm.js), one after
 * the other on the same server, and prints both side by side: how two commits compare on one boot.
 * Writes results/swarm-<stamp>-cost.csv and a history.csv row (this checkout's sequence run, costs in
 * the swarm_us_per_* columns).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { LaunchEvent, RunSummary, Swarm, TickEvent } from '../clients/swarm/swarm.js';
import { checkHost, type HostCheck } from '../clients/host/host-check.js';
import { interruptible } from '../clients/host/interrupt.js';
import type { SwarmOptions } from '../clients/swarm/options.js';
import { appendHistory, hostColumns, stamp, summaryRow, writeCsv, type Row, type SwarmCosts } from '../clients/swarm/output/csv.js';
import { attachProgress } from '../clients/swarm/output/progress.js';
import { summaryLines, targetLines } from '../clients/swarm/output/summary.js';
import { childPids, processCpuMicros } from '../clients/host/proc.js';
import { ERROR_KINDS } from '../clients/swarm/metrics.js';
import { BENCH_HOST_CHECK_S, benchCli, csvLine, finishBench, interrupted, numeric, RESULTS_DIR } from './lib/run.js';
import { startServerProcess, type ServerProcess } from './lib/servers.js';

const RUNS = ['sequence', 'phases', 'broadcast'] as const;
type RunName = (typeof RUNS)[number];

/** Where a built checkout keeps the swarm: clients/swarm/ now, clients/engine.js before the tree was laid out by role. */
const SWARM_MODULES = ['dist/clients/swarm/swarm.js', 'dist/clients/engine.js'];
function swarmModuleOf(checkout: string): string | null {
  return SWARM_MODULES.map((path) => join(checkout, path)).find((path) => existsSync(path)) ?? null;
}

const args = await benchCli('bench-swarm', '$0 [flags]\n\nThe swarm\'s own CPU per echo client sequence (and that split into a run\'s own, from the same run with\none client, and each client\'s at this load), per connect, per echo round trip, per close and per\nreceived broadcast frame, against the bare-uWS server. About 2 minutes; twice that with --against.')
  .option('clients', { coerce: numeric, requiresArg: true, default: 5000, describe: 'echo clients of the sequence and phases runs' })
  .option('subscribers', { coerce: numeric, requiresArg: true, default: 1000, describe: 'subscribers of the broadcast run (one more client publishes)' })
  .option('rate', { coerce: numeric, requiresArg: true, default: 200, describe: 'messages per second the broadcast publisher sends; each reaches every subscriber' })
  .option('duration', { coerce: numeric, requiresArg: true, default: 8, describe: 'seconds of publishing in the broadcast run' })
  .option('workers', { coerce: numeric, requiresArg: true, default: 0, describe: 'swarm worker processes in every run; 0 = the swarm\'s own choice, one per 5,000 clients' })
  .option('runs', { type: 'string', default: 'sequence,phases,broadcast', describe: 'comma-separated runs to make: sequence, phases, broadcast' })
  .option('against', { type: 'string', describe: 'a built checkout of another commit (its dist/): run its swarm too, and compare side by side' })
  .option('out', { type: 'string', default: RESULTS_DIR, describe: 'directory for the CSV and history.csv' })
  .check((a) => {
    for (const key of ['clients', 'subscribers', 'rate', 'duration', 'workers'] as const) {
      const value = a[key];
      const least = key === 'workers' ? 0 : 1;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < least) throw new Error(`--${key} must be a whole number from ${least}, got ${String(value)}`);
    }
    if ((a.duration as number) < 4) throw new Error(`--duration must be 4 s or more (the steady seconds are its middle), got ${String(a.duration)}`);
    const bad = a.runs.split(',').find((r) => !RUNS.includes(r.trim() as RunName));
    if (bad !== undefined) throw new Error(`--runs: unknown run ${JSON.stringify(bad)}; use ${RUNS.join(', ')}`);
    if (a.against !== undefined && swarmModuleOf(resolve(a.against)) === null) {
      throw new Error(`--against: no ${SWARM_MODULES.join(' or ')} under ${resolve(a.against)}; build that checkout first (make build)`);
    }
    return true;
  })
  .parseAsync();

/** The sequence run: connects over 10 s, then 3 rounds 1 s apart; it lasts SEQUENCE_S. */
const SEQUENCE = { ramp: 10, delay: 1, rounds: 3 };
const SEQUENCE_S = SEQUENCE.ramp + SEQUENCE.rounds * SEQUENCE.delay;
/**
 * The one-client run spaces its rounds so that it lasts as long as the sequence: its CPU is then all a
 * run costs whatever its clients (start-up, a report every 500 ms, the end), not less for ending sooner.
 */
const ONE_CLIENT_DELAY = SEQUENCE_S / SEQUENCE.rounds;
/** The phases run: connects over RAMP_S seconds, each round PHASE_S seconds after the previous one. */
const RAMP_S = 4;
const PHASE_S = 6;
/** An engine older than the `launch` event began its workers' ramp this long after the run started. */
const OLDER_ENGINE_LAUNCH_MS = 300;
const SAMPLE_MS = 100;

type SwarmClass = new (options: Partial<SwarmOptions>) => Swarm;
interface Side {
  label: string;
  Swarm: SwarmClass;
}

/** The swarm's CPU (µs) read from /proc: this process, its live children but the server, and those reaped. */
function swarmCpuMicros(serverPid: number): number {
  const self = processCpuMicros()!;
  let total = self.own + self.reaped;
  for (const pid of childPids(process.pid)) if (pid !== serverPid) total += processCpuMicros(pid)?.own ?? 0;
  return total;
}

/** CPU samples of the swarm over a run, and the CPU between two moments by linear interpolation. */
class CpuTimeline {
  private readonly points: [number, number][] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly serverPid: number) {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }

  /** CPU µs used between epoch ms `from` and `to`. */
  between(from: number, to: number): number {
    return this.at(to) - this.at(from);
  }

  private sample(): void {
    this.points.push([Date.now(), swarmCpuMicros(this.serverPid)]);
  }

  private at(t: number): number {
    const p = this.points;
    if (t <= p[0][0]) return p[0][1];
    for (let i = 1; i < p.length; i++) {
      if (p[i][0] >= t) {
        const [t0, c0] = p[i - 1];
        const [t1, c1] = p[i];
        return c0 + ((c1 - c0) * (t - t0)) / Math.max(1, t1 - t0);
      }
    }
    return p[p.length - 1][1];
  }
}

interface Measured {
  summary: RunSummary;
  /** CPU µs of the whole run, workers' whole lives included. */
  cpuMicros: number;
  timeline: CpuTimeline;
  /** Epoch ms at which the ramp began (client 0's slot). */
  launchedAt: number;
  ticks: { at: number; delivered: number }[];
}

/** Waits until every swarm worker has exited and been reaped, so their CPU shows in this process's cutime. */
async function workersReaped(serverPid: number): Promise<void> {
  const until = Date.now() + 5000;
  while (childPids(process.pid).some((pid) => pid !== serverPid) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
}

async function measure(side: Side, server: ServerProcess, options: Partial<SwarmOptions>): Promise<Measured> {
  const swarm = new side.Swarm({ ...options, url: server.url, serverPid: server.pid, hostCheck: 0 });
  // An older engine's ticks and summary lack what later ones added; this side's outputs read them.
  // Listening first, so the outputs see them filled in.
  swarm.on('tick', (tick: Partial<TickEvent>) => {
    tick.timings ??= {};
    tick.checks ??= { passed: 0, failed: 0, rate: null };
    tick.stage ??= null;
    for (const kind of ERROR_KINDS) tick.counters!.errors[kind] ??= 0;
  });
  attachProgress(swarm);
  let startedAt = 0;
  let launchedAt: number | null = null;
  const ticks: Measured['ticks'] = [];
  swarm.on('start', (event: { startedAt: number }) => (startedAt = event.startedAt));
  swarm.on('launch', (event: LaunchEvent) => (launchedAt = event.at));
  swarm.on('tick', (tick: TickEvent) => ticks.push({ at: Date.now(), delivered: tick.counters.delivered }));
  const timeline = new CpuTimeline(server.pid);
  const before = swarmCpuMicros(server.pid);
  const done = interruptible(swarm);
  const summary = await swarm.run().finally(done);
  await workersReaped(server.pid);
  timeline.stop();
  const cpuMicros = swarmCpuMicros(server.pid) - before;
  // An older engine does not measure its own CPU; this measure is the same for both sides.
  summary.swarmCpuS = cpuMicros / 1e6;
  summary.clientSockets ??= `ws client (${(summary as { helpers?: string }).helpers ?? 'an older engine'})`;
  for (const kind of ERROR_KINDS) summary.counters.errors[kind] ??= 0;
  summary.timings ??= {};
  summary.checks ??= {};
  summary.thrown ??= {};
  for (const line of summaryLines(summary, `${side.label}, ${options.scenario}`)) console.log(line);
  return { summary, cpuMicros, timeline, launchedAt: launchedAt ?? startedAt + OLDER_ENGINE_LAUNCH_MS, ticks };
}

/** The echo client sequence's figures, µs of CPU (null when not measured), for a swarm and for the floor. */
interface SequenceCosts {
  /** Per client. */
  sequence: number | null;
  /** The sequence with one client: what a run costs whatever its clients. */
  run: number | null;
  /** Per client beyond that one-client run. */
  added: number | null;
}

/** What one side measured, µs of CPU per thing (null when not measured). */
interface Costs extends SwarmCosts, SequenceCosts {
  idlePct: number | null;
  saturated: string[];
  summaries: Partial<Record<RunName, RunSummary>>;
}

function echoOptions(clients: number, ramp: number, delay: number): Partial<SwarmOptions> {
  return { scenario: 'echo', clients, ramp, delay, rounds: SEQUENCE.rounds, workers: args.workers as number };
}

async function measureSide(side: Side, server: ServerProcess, runs: RunName[]): Promise<Costs> {
  const clients = args.clients as number;
  const costs: Costs = { sequence: null, run: null, added: null, connect: null, rtt: null, close: null, frame: null, idlePct: null, saturated: [], summaries: {} };
  let idleMicrosPerMs: number | null = null;
  for (const run of runs) {
    if (interrupted()) break;
    console.log(`\n== ${side.label}: ${run}`);
    if (run === 'sequence') {
      const m = await measure(side, server, echoOptions(clients, SEQUENCE.ramp, SEQUENCE.delay));
      costs.summaries.sequence = m.summary;
      costs.saturated.push(`sequence: ${m.summary.saturated}`);
      costs.sequence = m.cpuMicros / clients;
      if (interrupted()) break;
      console.log(`\n== ${side.label}: sequence with one client`);
      const one = await measure(side, server, echoOptions(1, SEQUENCE.ramp, ONE_CLIENT_DELAY));
      costs.run = one.cpuMicros;
      costs.added = addedPerClient(m.cpuMicros, one.cpuMicros, clients);
    } else if (run === 'phases') {
      const m = await measure(side, server, echoOptions(clients, RAMP_S, PHASE_S));
      costs.summaries.phases = m.summary;
      costs.saturated.push(`phases: ${m.summary.saturated}`);
      const origin = m.launchedAt;
      // The middle 3 of each phase's RAMP_S seconds: clear of start-up and of a slow client's tail.
      const inWindow = (clients * (RAMP_S - 1)) / RAMP_S;
      const phase = (p: number): number => m.timeline.between(origin + p * PHASE_S * 1000 + 500, origin + p * PHASE_S * 1000 + (RAMP_S - 0.5) * 1000);
      const gapMs = (PHASE_S - RAMP_S - 0.7) * 1000;
      const gaps = [0, 1, 2].map((p) => m.timeline.between(origin + p * PHASE_S * 1000 + (RAMP_S + 0.5) * 1000, origin + p * PHASE_S * 1000 + (RAMP_S + 0.5) * 1000 + gapMs));
      idleMicrosPerMs = gaps.reduce((a, b) => a + b, 0) / (gaps.length * gapMs);
      const net = (p: number): number => Math.max(0, phase(p) - idleMicrosPerMs! * (RAMP_S - 1) * 1000) / inWindow;
      costs.idlePct = idleMicrosPerMs / 10;
      costs.connect = net(0);
      costs.rtt = (net(1) + net(2)) / 2;
      costs.close = Math.max(0, net(3) - costs.rtt);
    } else {
      const subscribers = args.subscribers as number;
      const rate = args.rate as number;
      const m = await measure(side, server, {
        scenario: 'broadcast', clients: subscribers + 1, publishers: 1, rate, duration: args.duration as number, ramp: 1, warmup: 0, drain: 1, workers: args.workers as number,
      });
      costs.summaries.broadcast = m.summary;
      costs.saturated.push(`broadcast: ${m.summary.saturated}`);
      // The steady seconds: every tick from the first to the last in which copies came in at 90% or more
      // of the offered rate; the ramp to it and the drain after it are left out.
      const offered = rate * subscribers;
      let first = -1;
      let last = -1;
      for (let i = 1; i < m.ticks.length; i++) {
        const perSecond = ((m.ticks[i].delivered - m.ticks[i - 1].delivered) * 1000) / Math.max(1, m.ticks[i].at - m.ticks[i - 1].at);
        if (perSecond >= 0.9 * offered) {
          if (first < 0) first = i - 1;
          last = i;
        }
      }
      if (first < 0 || last - first < 2) {
        console.log(`bench-swarm: ${side.label}: copies never arrived at 90% of the offered ${offered}/s for 2 s; no per-frame figure`);
      } else {
        const from = m.ticks[first];
        const to = m.ticks[last];
        const idle = (idleMicrosPerMs ?? 0) * (to.at - from.at);
        costs.frame = Math.max(0, m.timeline.between(from.at, to.at) - idle) / (to.delivered - from.delivered);
      }
    }
  }
  return costs;
}

/** Runs bench/lib/floor-client.js with `argv` to its end; resolves with what it printed. */
async function runFloor(argv: string[]): Promise<string> {
  const script = fileURLToPath(new URL('./lib/floor-client.js', import.meta.url));
  const child = spawn(process.execPath, [script, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await new Promise((resolve) => child.once('exit', resolve));
  return out;
}

/**
 * The broadcast floor's CPU per received frame, µs: bare subscribers of bench/lib/floor-client.ts at the
 * broadcast run's subscribers and rate, over its publishing seconds.
 */
async function measureFrameFloor(server: ServerProcess): Promise<number | null> {
  const subscribers = args.subscribers as number;
  console.log(`\n== floor: ${subscribers} bare Node subscribers at ${args.rate as number} msg/s`);
  const out = await runFloor(['broadcast', `${server.url}/pubsub`, String(subscribers), String(args.rate), String(args.duration)]);
  const match = /frames (\d+) cpu_us (\d+)/.exec(out);
  if (!match || Number(match[1]) === 0) return null;
  console.log(`floor: ${match[1]} frames, ${(Number(match[2]) / 1e6).toFixed(2)} s of CPU`);
  return Number(match[2]) / Number(match[1]);
}

/** CPU µs per client of a run of `clients` beyond a one-client run of the same sequence; null for one client. */
function addedPerClient(cpuMicros: number, oneClientMicros: number, clients: number): number | null {
  return clients > 1 ? Math.max(0, cpuMicros - oneClientMicros) / (clients - 1) : null;
}

/** The floor client's CPU running the echo client sequence for `clients` clients, µs; null when one did not complete. */
async function floorSequenceCpu(server: ServerProcess, clients: number): Promise<number | null> {
  console.log(`\n== floor: ${clients} bare Node client${clients === 1 ? '' : 's'}, the same sequence`);
  const before = swarmCpuMicros(server.pid);
  const delay = clients === 1 ? ONE_CLIENT_DELAY : SEQUENCE.delay;
  const out = await runFloor([`${server.url}/echo?rounds=${SEQUENCE.rounds}`, String(clients), String(SEQUENCE.ramp), String(delay), String(SEQUENCE.rounds)]);
  const cpu = swarmCpuMicros(server.pid) - before;
  const completed = Number(/completed (\d+)/.exec(out)?.[1] ?? NaN);
  console.log(`floor: ${completed} of ${clients} completed, ${(cpu / 1e6).toFixed(2)} s of CPU`);
  return completed === clients ? cpu : null;
}

/** The floor's figures for the echo client sequence, µs, as {@link Costs} has them for a swarm. */
async function measureFloor(server: ServerProcess): Promise<SequenceCosts> {
  const clients = args.clients as number;
  const all = await floorSequenceCpu(server, clients);
  const one = interrupted() ? null : await floorSequenceCpu(server, 1);
  return { sequence: all === null ? null : all / clients, run: one, added: all === null || one === null ? null : addedPerClient(all, one, clients) };
}

const runs = [...new Set(args.runs.split(',').map((r) => r.trim() as RunName))].sort((a, b) => RUNS.indexOf(a) - RUNS.indexOf(b));
const { Swarm: OwnSwarm } = await import('../clients/swarm/swarm.js');
const sides: Side[] = [];
if (args.against !== undefined) {
  const dir = resolve(args.against);
  const module = (await import(pathToFileURL(swarmModuleOf(dir)!).href)) as { Swarm: SwarmClass };
  sides.push({ label: `against (${dir})`, Swarm: module.Swarm });
}
sides.push({ label: 'this checkout', Swarm: OwnSwarm as unknown as SwarmClass });

const host: HostCheck = await checkHost(BENCH_HOST_CHECK_S);
console.log(`host: reference work ${Math.round(host.referenceMs)} ms, stalled ${host.stalledPct.toFixed(1)}%`);
const server = await startServerProcess('bare');
const results: Costs[] = [];
let floor: SequenceCosts = { sequence: null, run: null, added: null };
let frameFloor: number | null = null;
try {
  console.log(`bench-swarm: bare uWS, pid ${server.pid} on ${server.url}, engine ${server.engine}`);
  if (runs.includes('sequence')) floor = await measureFloor(server);
  if (runs.includes('broadcast')) frameFloor = await measureFrameFloor(server);
  for (const side of sides) results.push(await measureSide(side, server, runs));
} finally {
  await server.stop();
}

type Unit = 'ms' | 'whole ms' | 'µs';
const fmt = (v: number | null, unit: Unit): string =>
  v === null ? 'N/A' : unit === 'ms' ? `${(v / 1000).toFixed(3)} ms` : unit === 'whole ms' ? `${(v / 1000).toFixed(0)} ms` : `${v.toFixed(1)} µs`;
const own = results[results.length - 1];
const against = results.length > 1 ? results[0] : null;
const rows: [string, keyof Costs, Unit][] = [
  [`echo client sequence (${args.clients} clients over 10 s, 3 rounds 1 s apart)`, 'sequence', 'ms'],
  [`  of which a run's own: one client over the same ${SEQUENCE_S} s (start-up, reports, the end)`, 'run', 'whole ms'],
  ['  and each client\'s: the sequence less that run, per other client', 'added', 'ms'],
  ['connect (upgrade and welcome)', 'connect', 'µs'],
  ['echo round trip', 'rtt', 'µs'],
  ['close (goodbye and the closing handshake)', 'close', 'µs'],
  [`received broadcast frame (${args.subscribers} subscribers x ${args.rate} msg/s)`, 'frame', 'µs'],
];
console.log(`\nbench-swarm: the swarm's CPU per operation, from /proc of every swarm process (host reference ${Math.round(host.referenceMs)} ms)`);
for (const [name, key, unit] of rows) {
  const mine = own[key] as number | null;
  const theirs = against?.[key] as number | null | undefined;
  const side = against ? `   against: ${fmt(theirs ?? null, unit)}${mine && theirs ? ` (${(theirs / mine).toFixed(2)}x lighter now)` : ''}` : '';
  console.log(`  ${name}: ${fmt(mine, unit)}${side}`);
}
if (runs.includes('sequence')) {
  console.log(`  floor: the least a Node client can do for the same sequence (bench/lib/floor-client.ts): ${fmt(floor.sequence, 'ms')}`);
  console.log(`    its one-client run: ${fmt(floor.run, 'whole ms')}; each client beyond it: ${fmt(floor.added, 'ms')}`);
}
if (runs.includes('broadcast')) console.log(`  floor: the least a Node subscriber can do per received frame, same subscribers and rate: ${fmt(frameFloor, 'µs')}`);
console.log(`  idle (reports, timers): ${own.idlePct === null ? 'N/A' : `${own.idlePct.toFixed(1)}% of a core`}`);
for (const [i, r] of results.entries()) console.log(`which side was saturated (${sides[i].label}): ${r.saturated.join(', ')}`);
const lines = targetLines([
  { name: 'swarm CPU per echo client sequence <= 0.45 ms', measured: fmt(own.sequence, 'ms'), pass: own.sequence === null ? null : own.sequence <= 450 },
  ...(against
    ? [
        { name: 'at least 3x lighter per echo client sequence', measured: own.sequence && against.sequence ? `${(against.sequence / own.sequence).toFixed(2)}x` : 'N/A', pass: own.sequence && against.sequence ? against.sequence / own.sequence >= 3 : null },
        { name: 'at least 2x lighter per received broadcast frame', measured: own.frame && against.frame ? `${(against.frame / own.frame).toFixed(2)}x` : 'N/A', pass: own.frame && against.frame ? against.frame / own.frame >= 2 : null },
      ]
    : []),
]);
for (const line of lines) console.log(line);

mkdirSync(args.out, { recursive: true });
const name = `swarm-${stamp()}`;
const csvRows: Row[] = [
  ...results.flatMap((r, i) =>
    rows.map(([operation, key]) => ({
      run: name, swarm: sides[i].label, operation: key, cpu_us: r[key] as number | null, description: operation.trim(), idle_pct: r.idlePct, ...hostColumns(host),
    })),
  ),
  ...(runs.includes('sequence')
    ? ([
        ['sequence', 'the least a Node client can do for the echo client sequence (bench/lib/floor-client.ts)'],
        ['run', 'the same, one client: the floor client\'s own start-up and end'],
        ['added', 'the same, per client beyond the one-client run'],
      ] as const).map(([key, description]) => ({ run: name, swarm: 'floor', operation: key, cpu_us: floor[key], description, idle_pct: null, ...hostColumns(host) }))
    : []),
  ...(runs.includes('broadcast')
    ? [{ run: name, swarm: 'floor', operation: 'frame', cpu_us: frameFloor, description: 'the least a Node subscriber can do per received broadcast frame (bench/lib/floor-client.ts)', idle_pct: null, ...hostColumns(host) }]
    : []),
];
const csvPath = join(args.out, `${name}-cost.csv`);
writeCsv(csvPath, csvRows);
const files = [csvPath];
const summary = own.summaries.sequence ?? own.summaries.phases ?? own.summaries.broadcast;
if (summary) {
  appendHistory(join(args.out, 'history.csv'), summaryRow({ ...summary, host }, 'bare', name, own));
  files.push(join(args.out, 'history.csv'));
}
console.log(csvLine(files));
const failed = own.summaries.sequence !== undefined && own.summaries.sequence.counters.completed !== own.summaries.sequence.options.clients;
finishBench(args, failed);
