/**
 * `make bench-c1m` (`CLIENTS=` to choose): as many WebSocket connections at once as this machine holds.
 * One process may hold 20,000 open files, so both sides run as processes of at most MAX_CLIENTS_PER_WORKER
 * connections: server processes on consecutive ports bridged by Redis, swarm workers connecting from
 * enough loopback addresses (MAX_CLIENTS_PER_SOURCE ephemeral ports each).
 *
 * 1. Calibration: a small run (one server process, one swarm worker) measures what a connection costs
 *    each side and the kernel (the slopes of RSS and of /proc/meminfo Slab over its ramp), and what a
 *    process costs before any (a supervisor and its server processes at rest; a swarm worker: its
 *    line's value at no connection). A process's own pages count for each process; the pages every
 *    node process shares (its binary) count once, as the machine holds them.
 * 2. The memory budget for the count asked (or the most that fits, at most 1,000,000), printed before
 *    any connection; a count that would not fit in MemAvailable less --reserve is refused, naming the
 *    count that does.
 * 3. The run: the crowd sequence, connecting at --rate, holding every connection for --hold seconds in
 *    which each client times one echo round trip and every client receives a broadcast every
 *    --broadcast-every seconds (fanout and copies lost). The timeline CSV has RSS, slab and CPU per side
 *    each second.
 * 4. The budget against what was measured, and a projection of the same per-connection costs to a
 *    16-core, 64 GB machine.
 */
import { randomBytes } from 'node:crypto';
import { MAX_CLIENTS_PER_SOURCE, MAX_CLIENTS_PER_WORKER, broadcastCount, validateSwarmOptions, type SwarmOptions } from '../clients/swarm/options.js';
import { stamp } from '../clients/swarm/output/csv.js';
import { targetLines, type Target } from '../clients/swarm/output/summary.js';
import type { RunSummary, TickEvent } from '../clients/swarm/swarm.js';
import { CopyCpuMeter, copyCpuText, fanoutFloorSeconds, type CopyCpu } from './lib/copy-cpu.js';
import { childPids, meminfo, privateSharedBytes } from '../clients/host/proc.js';
import { benchCli, csvLine, finishBench, numeric, RESULTS_DIR, runSwarm } from './lib/run.js';
import { freePortRun, idleTimeoutFor, requireRedis, startServerProcess, type ServerProcess } from './lib/servers.js';
import { serverArgs } from '../server/options.js';
import { usageError } from '../server/command-line.js';

const MIB = 2 ** 20;
const GIB = 2 ** 30;
/** The most bench-c1m tries when --clients is not given. */
const MOST = 1_000_000;
/** Seconds a client waits for a pong or the last broadcast before it counts it as lost. */
const REPLY_TIMEOUT_S = 180;
/** The machine the projection is for. */
const PROJECTED = { cores: 16, bytes: 64 * GIB };

const args = await benchCli('bench-c1m', '$0 [flags]\n\nAs many connections at once as this machine holds (at least 500,000 is the aim, 1,000,000 if the memory\nallows): a calibration run measures what a connection and a process cost, the budget is printed and a count\nthat does not fit is refused, then every connection is held while broadcasts reach all. Needs Redis (--redis).')
  .option('clients', { coerce: numeric, requiresArg: true, describe: `connections to hold at once (default: the most the memory budget allows, at most ${MOST.toLocaleString('en')}, in steps of 10,000)` })
  .option('rate', { coerce: numeric, requiresArg: true, default: 1500, describe: 'connections opened per second (the ramp is clients / rate); at 2,000/s here 1,942 of 850,000 sat unanswered past the server\'s 10 s upgrade timeout while swarm workers stalled' })
  .option('hold', { coerce: numeric, requiresArg: true, default: 90, describe: 'seconds every connection is held once all are open; each client times one echo round trip within them' })
  .option('broadcast-every', { coerce: numeric, requiresArg: true, default: 30, describe: 'seconds between broadcasts to every client during the hold (one to 790,000 took 10-60 s of both cores here)' })
  .option('calibrate', { coerce: numeric, requiresArg: true, default: 10_000, describe: 'connections of the calibration run (one server process, one swarm worker) that measures the costs' })
  .option('reserve', { coerce: numeric, requiresArg: true, default: 2048, describe: 'MiB of MemAvailable the budget leaves free (page cache, Redis, the kernel\'s buffers under load)' })
  .option('redis', { type: 'string', default: 'redis://127.0.0.1:6379', describe: 'Redis that bridges the server processes (a unique --prefix keeps the run apart)' })
  .option('out', { type: 'string', default: RESULTS_DIR, describe: 'directory for the CSVs and history.csv' })
  .parseAsync();

const rate = args.rate as number;
const hold = args.hold as number;
const broadcastEvery = args.broadcastEvery as number;
const calibrate = args.calibrate as number;
const reserveBytes = (args.reserve as number) * MIB;
const asked = args.clients as number | undefined;
try {
  const integer = (name: string, value: unknown, min: number, max: number): void => {
    if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
      throw new RangeError(`--${name} must be an integer from ${min} to ${max.toLocaleString('en')} (got ${JSON.stringify(value)})`);
    }
  };
  if (asked !== undefined) integer('clients', asked, 1000, 64 * MAX_CLIENTS_PER_WORKER);
  integer('rate', rate, 100, 20_000);
  integer('hold', hold, 10, 600);
  integer('broadcast-every', broadcastEvery, 1, hold);
  integer('calibrate', calibrate, 5000, MAX_CLIENTS_PER_WORKER); // fewer do not lift RSS above the heap's swings
  integer('reserve', args.reserve, 0, 64 * 1024);
} catch (err) {
  usageError('bench-c1m', (err as Error).message);
}
await requireRedis('bench-c1m', args.redis);

/** What one connection and one process cost, from the calibration run. */
interface Costs {
  serverPerConnection: number;
  swarmPerConnection: number;
  /** Slab per connection: both its sockets, the client's and the server's, on loopback. */
  kernelPerConnection: number;
  /** What the server's supervisor, and one server process before any connection, hold alone. */
  supervisor: number;
  serverProcess: number;
  /** What the swarm's engine (this process), and one swarm worker before any connection, hold alone. */
  engine: number;
  swarmWorker: number;
  /** The pages every node process shares (RSS counts them in each; the machine holds them once). */
  shared: number;
}

/** Processes and addresses a count needs: one server process and one worker per MAX_CLIENTS_PER_WORKER. */
function layout(clients: number): { processes: number; addresses: string[] } {
  const processes = Math.ceil(clients / MAX_CLIENTS_PER_WORKER);
  const addresses = Array.from({ length: Math.ceil(clients / MAX_CLIENTS_PER_SOURCE) }, (_, i) => `127.0.0.${i + 2}`);
  return { processes, addresses };
}

/** The memory `clients` connections need, by part. */
function budget(costs: Costs, clients: number): { server: number; swarm: number; kernel: number; shared: number; total: number } {
  const { processes } = layout(clients);
  // One server process runs without a supervisor (server/cli.ts).
  const server = (processes > 1 ? costs.supervisor : 0) + processes * costs.serverProcess + clients * costs.serverPerConnection;
  const swarm = costs.engine + processes * costs.swarmWorker + clients * costs.swarmPerConnection;
  const kernel = clients * costs.kernelPerConnection;
  return { server, swarm, kernel, shared: costs.shared, total: server + swarm + kernel + costs.shared };
}

/** The most clients, in steps of 10,000 up to MOST, whose budget fits in `room` bytes; 0 when not even 10,000 do. */
function mostThatFits(costs: Costs, room: number): number {
  for (let clients = MOST; clients >= 10_000; clients -= 10_000) if (budget(costs, clients).total <= room) return clients;
  return 0;
}

const gib = (bytes: number): string => `${(bytes / GIB).toFixed(2)} GiB`;
const mib = (bytes: number): string => `${(bytes / MIB).toFixed(0)} MiB`;
const perConn = (bytes: number): string => `${Math.round(bytes).toLocaleString('en')} B`;

/** The server args of both runs: the same, so the calibration measures what the big run starts. */
function startServers(processes: number, idleSeconds: number): Promise<ServerProcess> {
  return freePortRun(processes).then((port) =>
    startServerProcess('cluster', [
      ...serverArgs({ idleTimeout: idleSeconds, redis: args.redis, prefix: `c1m${randomBytes(3).toString('hex')}` }),
      '--workers', String(processes), '--worker-ports', 'consecutive',
    ], { port, startTimeoutMs: 10_000 + 2000 * processes }), // each process loads in 0.5-1 s of a core
  );
}

const urls = (server: ServerProcess, processes: number): string => Array.from({ length: processes }, (_, i) => `ws://127.0.0.1:${server.port + i}`).join(',');

/** The crowd sequence as this bench runs it: one echo per client within the hold, broadcasts to all. */
function crowdOptions(clients: number, ramp: number, holdSeconds: number, every: number): Partial<SwarmOptions> {
  const { processes, addresses } = layout(clients);
  return {
    scenario: 'crowd',
    clients,
    ramp,
    delay: holdSeconds,
    rounds: 1,
    broadcastEvery: every,
    drain: 3,
    channel: 'c1m',
    workers: processes,
    sourceAddresses: addresses,
    // Connects queue behind each other on two cores; a slow one is not a failure.
    connectTimeout: 60_000,
    // A copy or a pong behind a broadcast to every client is late, not lost, until this (crowd.ts).
    replyTimeout: REPLY_TIMEOUT_S * 1000,
    // On a saturated box the connects may run at half the rate asked; the run must not stop for that.
    timeout: 2 * ramp + holdSeconds + REPLY_TIMEOUT_S + 120,
  };
}


async function measureCosts(): Promise<Costs> {
  // A supervisor and its processes at rest, as the big run starts them (with one process there is no
  // supervisor, so two).
  const resting = await startServers(2, 120);
  const alone = (pid: number): { private: number; shared: number } => privateSharedBytes(pid) ?? { private: NaN, shared: NaN };
  const supervisor = alone(resting.pid).private;
  const workers = childPids(resting.pid).map(alone);
  const serverProcess = workers.reduce((sum, w) => sum + w.private, 0) / workers.length;
  const shared = Math.max(...workers.map((w) => w.shared));
  await resting.stop();
  // The slopes on one process: two processes' heaps swing more than 10,000 connections lift them.
  const ramp = 10;
  console.log(`bench-c1m: calibration: ${calibrate.toLocaleString('en')} connections over ${ramp} s, one server process, one swarm worker`);
  const server = await startServers(1, idleTimeoutFor(ramp + 10));
  try {
    // The slopes come from the ramp; a short hold (one broadcast) is all the run needs after it.
    const { summary } = await runSwarm('calibration', { ...crowdOptions(calibrate, ramp, 2, 1), workers: 1, url: urls(server, 1), serverPid: server.pid }, undefined, true);
    const engine = alone(process.pid).private;
    const { client, kernel } = summary.memory;
    const s = summary.server;
    if (summary.peakConnected !== calibrate) throw new Error(`the calibration connected ${summary.peakConnected} of ${calibrate}`);
    if (!s || s.bytesPerConnection === null) throw new Error(`no server memory fit (${s?.memoryFitMissing ?? 'server not sampled'})`);
    if (client.bytesPerConnection === null) throw new Error(`no swarm memory fit (${client.why})`);
    if (kernel.bytesPerConnection === null) throw new Error(`no kernel memory fit (${kernel.why})`);
    if (!(serverProcess > 0 && shared > 0 && engine > 0)) throw new Error('the resting processes could not be read from /proc/<pid>/smaps_rollup');
    return {
      serverPerConnection: s.bytesPerConnection,
      swarmPerConnection: client.bytesPerConnection,
      kernelPerConnection: kernel.bytesPerConnection,
      supervisor,
      serverProcess,
      engine,
      // The swarm's workers start with the run: theirs is the fitted line's value at no connection,
      // which is RSS and counts the engine's RSS and the worker's shared pages too.
      swarmWorker: Math.max(0, client.baseBytes - process.memoryUsage.rss() - shared),
      shared,
    };
  } finally {
    await server.stop();
  }
}

const costs = await measureCosts().catch((err: Error) => {
  console.error(`bench-c1m: the calibration failed, so no budget can be made: ${err.message}`);
  process.exit(1);
});
const available = meminfo().availableBytes ?? 0;
const room = available - reserveBytes;
const fits = mostThatFits(costs, room);
const clients = asked ?? Math.max(fits, 10_000);
const plan = budget(costs, clients);
const { processes, addresses } = layout(clients);
console.log(`bench-c1m: measured per connection: server ${perConn(costs.serverPerConnection)}, swarm ${perConn(costs.swarmPerConnection)}, kernel slab ${perConn(costs.kernelPerConnection)} (both sockets); each process alone: server supervisor ${mib(costs.supervisor)}, server process ${mib(costs.serverProcess)}, swarm engine ${mib(costs.engine)}, swarm worker ${mib(costs.swarmWorker)}; shared by all, once: ${mib(costs.shared)}`);
console.log(`bench-c1m: budget for ${clients.toLocaleString('en')} connections (${processes} server processes, ${processes} swarm workers, ${addresses.length} source addresses): server ${gib(plan.server)} + swarm ${gib(plan.swarm)} + kernel ${gib(plan.kernel)} + shared ${gib(plan.shared)} = ${gib(plan.total)}; MemAvailable ${gib(available)} less a reserve of ${gib(reserveBytes)} leaves ${gib(Math.max(0, room))}; the most that fits: ${fits.toLocaleString('en')}`);
if (plan.total > room) {
  const instead = fits > 0 ? `${fits.toLocaleString('en')} fit (CLIENTS=${fits})` : 'not even 10,000 fit';
  console.error(`bench-c1m: ${clients.toLocaleString('en')} connections need ${gib(plan.total)}, more than the ${gib(Math.max(0, room))} this machine has free after the reserve; ${instead}, or free memory first`);
  process.exit(2);
}


const ramp = Math.ceil(clients / rate);
const swarmOptions = crowdOptions(clients, ramp, hold, broadcastEvery);
try {
  validateSwarmOptions(swarmOptions);
} catch (err) {
  usageError('bench-c1m', (err as Error).message);
}
const availableBefore = meminfo().availableBytes ?? NaN;
let availableLowest = availableBefore;
const server = await startServers(processes, idleTimeoutFor(ramp + hold));
let failed = true;
try {
  console.log(`bench-c1m: ${processes === 1 ? 'one server process' : `${processes} server processes (supervisor pid ${server.pid})`} on ports ${server.port}-${server.port + processes - 1}, bridged by ${args.redis}; connecting ${clients.toLocaleString('en')} at ${rate}/s over ${ramp} s, then ${hold} s held with a broadcast every ${broadcastEvery} s`);
  const copyCpu = new CopyCpuMeter(clients);
  const { summary, files } = await runSwarm(
    `${processes} server process${processes === 1 ? '' : 'es'} via Redis`,
    { ...swarmOptions, url: urls(server, processes), serverPid: server.pid },
    { dir: args.out, name: `c1m-${stamp()}` },
    false,
    (swarm) => {
      swarm.on('tick', copyCpu.add);
      swarm.on('tick', (tick: TickEvent) => (availableLowest = Math.min(availableLowest, tick.memory.availableBytes ?? Infinity)));
    },
  );
  const c = summary.counters;
  const broadcasts = broadcastCount(summary.options);
  const measured = measuredMemory(summary, availableBefore, availableLowest);
  const targets: Target[] = [
    { name: `${clients.toLocaleString('en')} connected at once`, measured: `peak ${summary.peakConnected.toLocaleString('en')}`, pass: summary.peakConnected === clients },
    // The aim when the count is the machine's to choose; a count given with CLIENTS= is the user's.
    ...(asked === undefined ? [{ name: 'at least 500,000 connections held', measured: summary.peakConnected.toLocaleString('en'), pass: summary.peakConnected >= 500_000 }] : []),
    { name: 'every client timed its echo', measured: `${c.completed.toLocaleString('en')} of ${clients.toLocaleString('en')}`, pass: c.completed === clients },
    {
      name: 'every broadcast reached every client (copies lost 0)',
      measured: `${broadcasts} broadcasts, ${c.published} published to ${c.subscribed.toLocaleString('en')} subscribers, ${c.delivered.toLocaleString('en')} of ${(c.published * c.subscribed).toLocaleString('en')} copies delivered, lost ${summary.lostDeliveries}`,
      // Judged over the clients that subscribed; one that never connected fails the target above.
      pass: c.published === broadcasts && summary.lostDeliveries === 0,
    },
    {
      name: 'memory within the budget (+15%)',
      measured: measured
        ? `${gib(measured.taken)} taken from MemAvailable at the lowest against ${gib(plan.total)} budgeted (budget: server ${gib(plan.server)}, swarm ${gib(plan.swarm)}, kernel ${gib(plan.kernel)}, shared ${gib(plan.shared)}; RSS at the peak, shared pages counted in every process: server ${gib(measured.server)}, swarm ${gib(measured.swarm)}; slab +${gib(measured.kernel)})`
        : 'not measured',
      pass: measured ? measured.taken <= plan.total * 1.15 : false,
    },
  ];
  for (const line of targetLines(targets)) console.log(line);
  for (const line of projection(summary, copyCpu.result(false))) console.log(line);
  console.log(csvLine(files));
  failed = targets.some((t) => t.pass === false);
} catch (err) {
  console.error(`bench-c1m: ${(err as Error).message}`);
} finally {
  await server.stop();
}
finishBench(args, failed);

/** What the run used at its peak, by part: RSS of each side and the slab's growth since before it. */
/**
 * What the run took, as the machine saw it: MemAvailable before its servers started less the lowest
 * MemAvailable of any second; beside it each side's RSS at the peak (which counts the shared pages in
 * every process) and the slab's growth.
 */
function measuredMemory(summary: RunSummary, availableBefore: number, availableLowest: number): { taken: number; server: number; swarm: number; kernel: number } | null {
  const { clientRssPeakBytes, slabRestBytes, slabPeakBytes } = summary.memory;
  if (!summary.server || clientRssPeakBytes === null || slabRestBytes === null || slabPeakBytes === null) return null;
  return { taken: availableBefore - availableLowest, server: summary.server.rssPeakBytes, swarm: clientRssPeakBytes, kernel: slabPeakBytes - slabRestBytes };
}

/**
 * The same per-connection costs on a 16-core, 64 GB machine: connections its memory holds with the
 * server alone on it (the clients elsewhere: the server's share and one socket's slab each), and with
 * the swarm beside it as here; and the time one broadcast to all of them takes when its CPU per copy
 * (measured here) spreads over 16 cores. Figures from this run's fits where it has them, else the
 * calibration's.
 */
function projection(summary: RunSummary, perCopy: CopyCpu | null): string[] {
  const pick = (fit: number | null | undefined, calibrated: number): number => fit ?? calibrated;
  const server = pick(summary.server?.bytesPerConnection, costs.serverPerConnection);
  const swarm = pick(summary.memory.client.bytesPerConnection, costs.swarmPerConnection);
  const kernel = pick(summary.memory.kernel.bytesPerConnection, costs.kernelPerConnection);
  const room = PROJECTED.bytes - reserveBytes - PROJECTED.cores * (costs.serverProcess + costs.swarmWorker) - costs.supervisor - costs.engine - costs.shared;
  const serverAlone = Math.floor((PROJECTED.bytes - reserveBytes - PROJECTED.cores * costs.serverProcess - costs.supervisor - costs.shared) / (server + kernel / 2));
  const both = Math.floor(room / (server + swarm + kernel));
  const lines = [
    `projection to ${PROJECTED.cores} cores, ${PROJECTED.bytes / GIB} GB (per connection: server ${perConn(server)}, swarm ${perConn(swarm)}, kernel ${perConn(kernel)} for both sockets; ${PROJECTED.cores} processes a side):`,
    `  memory holds ${serverAlone.toLocaleString('en')} connections with the server alone on it (kernel: its own socket, half the slab), ${both.toLocaleString('en')} with the swarm beside it as here`,
  ];
  if (perCopy) {
    const floor = (copies: number, cpu: CopyCpu): string => `${fanoutFloorSeconds(cpu, copies, PROJECTED.cores).toFixed(2)} s`;
    lines.push(`  here a broadcast copy cost ${copyCpuText(perCopy)}: one broadcast to ${serverAlone.toLocaleString('en')} needs up to ${floor(serverAlone, { ...perCopy, swarm: 0 })} of ${PROJECTED.cores} cores (server alone); to ${both.toLocaleString('en')} with the swarm beside it, up to ${floor(both, perCopy)}`);
  } else {
    lines.push('  CPU per broadcast copy: not measured (no copy arrived while every connection was held)');
  }
  return lines;
}
