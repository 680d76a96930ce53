/**
 * `make bench-c100k` (`QUICK=1` for a 20,000-client rehearsal): 100,000 WebSocket connections at once on
 * this machine. One process may hold 20,000 open files, so the server runs as `--server-workers`
 * processes on consecutive ports, bridged by Redis (`--workers N --worker-ports consecutive --redis`),
 * and the swarm as `--workers` processes connecting from several loopback addresses (each address has
 * 28,000 ephemeral ports). Every client runs the crowd sequence (clients/swarm/scenarios/crowd.ts): subscribe,
 * wait until all are subscribed, then the echo rounds, while client 0 publishes a broadcast every
 * --broadcast-every seconds that must reach all of them. Targets: all connected at once, every sequence
 * and every copy; echo p99 < 100 ms and fanout p99 < 500 ms as the server's figures, with the swarm's own
 * loop delay p99 < 10 ms. Writes results/c100k-<stamp>-{timeline,summary}.csv,
 * appends the summary to results/history.csv, prints the targets and exits 1 when one is missed.
 */
import { randomBytes } from 'node:crypto';
import { CLIENT_SOCKET_DRIVERS, type ClientSocketDriver } from '../clients/swarm/sockets/types.js';
import { MAX_CLIENTS_PER_WORKER, broadcastCount, validateSwarmOptions } from '../clients/swarm/options.js';
import { stamp } from '../clients/swarm/output/csv.js';
import { targetLines, type Target } from '../clients/swarm/output/summary.js';
import { ownership, ownershipText } from '../clients/swarm/harness-share.js';
import type { RunSummary } from '../clients/swarm/swarm.js';
import { benchCli, csvLine, finishBench, numeric, quickOr, RESULTS_DIR, runSwarm } from './lib/run.js';
import { freePortRun, idleTimeoutFor, requireRedis, startServerProcess } from './lib/servers.js';
import { CopyCpuMeter, copyCpuText, fanoutFloorSeconds, type CopyCpu } from './lib/copy-cpu.js';
import { availableParallelism } from 'node:os';
import { serverArgs } from '../server/options.js';
import { usageError } from '../server/command-line.js';

/** Issue 33's targets at 100,000 clients on this 2-core box. */
const ECHO_P99_MS = 100;
const FANOUT_P99_MS = 500;
const LOOP_P99_MS = 10;

const args = await benchCli('bench-c100k', '$0 [flags]\n\n100,000 connections at once: several server processes bridged by Redis, several swarm processes,\nseveral source addresses; echo rounds plus broadcasts that must reach every client. About 4 minutes;\n--quick: 20,000 clients in about 1. Needs Redis (--redis).')
  .option('quick', { type: 'boolean', default: false, describe: 'rehearsal: 20,000 clients, 2 server and 2 swarm processes, 2 source addresses, ramp 10 s, delay 5 s' })
  .option('clients', { coerce: numeric, requiresArg: true, describe: 'connections, all open at the same time (default 100000; quick 20000)' })
  .option('server-workers', { coerce: numeric, requiresArg: true, describe: `server processes on consecutive ports, at most ${MAX_CLIENTS_PER_WORKER} clients each (default 7; quick 2)` })
  .option('workers', { coerce: numeric, requiresArg: true, describe: `swarm processes, at most ${MAX_CLIENTS_PER_WORKER} clients each (default 6; quick 2)` })
  .option('source-addresses', { type: 'string', describe: 'comma-separated local addresses the clients connect from, at most 27,000 clients each (default 127.0.0.2 to 127.0.0.11; quick 127.0.0.2,127.0.0.3)' })
  .option('ramp', { coerce: numeric, requiresArg: true, describe: 'seconds over which the clients connect (default 100; quick 10)' })
  .option('delay', { coerce: numeric, requiresArg: true, describe: 'seconds of each echo round, once all are connected (default 20; quick 5)' })
  .option('rounds', { coerce: numeric, requiresArg: true, default: 3, describe: 'echo rounds per client' })
  .option('broadcast-every', { coerce: numeric, requiresArg: true, describe: 'seconds between broadcasts during the rounds (default 5; quick 2.5)' })
  .option('client-sockets', { choices: CLIENT_SOCKET_DRIVERS, default: 'libuv', describe: "the swarm's TCP connections: libuv (Node's TCP handles alone) or net (net.Socket), to compare their cost" })
  .option('redis', { type: 'string', default: 'redis://127.0.0.1:6379', describe: 'Redis that bridges the server processes (a unique --prefix keeps the run apart)' })
  .option('out', { type: 'string', default: RESULTS_DIR, describe: 'directory for the CSVs and history.csv' })
  .parseAsync();

const pick = <T>(given: T | undefined, full: T, short: T): T => quickOr(args.quick, given, full, short);
const clients = pick(args.clients as number | undefined, 100_000, 20_000);
const serverWorkers = pick(args.serverWorkers as number | undefined, 7, 2);
const ramp = pick(args.ramp as number | undefined, 100, 10);
const delay = pick(args.delay as number | undefined, 20, 5);
const addresses = pick(
  args.sourceAddresses as string | undefined,
  Array.from({ length: 10 }, (_, i) => `127.0.0.${i + 2}`).join(','),
  '127.0.0.2,127.0.0.3',
);
const swarmOptions = {
  scenario: 'crowd' as const,
  clients,
  ramp,
  delay,
  rounds: args.rounds as number,
  broadcastEvery: pick(args.broadcastEvery as number | undefined, 5, 2.5),
  drain: 3,
  channel: 'c100k',
  // Six, not eight: with 7 server processes and Redis on 2 cores, two more swarm processes made every
  // client dearer (swarm CPU per client 1.153-1.236 ms with 8, 0.984 ms with 6, 0.91-1.00 ms at 10,000).
  workers: pick(args.workers as number | undefined, 6, 2),
  sourceAddresses: addresses.split(',').map((a) => a.trim()).filter(Boolean),
  clientSockets: args.clientSockets as ClientSocketDriver,
  // 100,000 connects queue up behind each other on two cores; a slow one is not a failure.
  connectTimeout: 30_000,
  replyTimeout: 30_000,
};
try {
  validateSwarmOptions(swarmOptions); // a bad flag exits 2 before any server starts
  if (!Number.isInteger(serverWorkers) || serverWorkers < 1 || serverWorkers > 64) {
    throw new RangeError(`--server-workers must be an integer from 1 to 64 (got ${JSON.stringify(serverWorkers)})`);
  }
  if (Math.ceil(clients / serverWorkers) > MAX_CLIENTS_PER_WORKER) {
    throw new RangeError(`--server-workers must give each server process at most ${MAX_CLIENTS_PER_WORKER} clients (one process may hold 20,000 open files); ${clients} clients need ${Math.ceil(clients / MAX_CLIENTS_PER_WORKER)} or more`);
  }
} catch (err) {
  usageError('bench-c100k', (err as Error).message);
}
await requireRedis('bench-c100k', args.redis);

// No client may be closed for silence: the longest is the wait for the others to connect plus a round.
const idle = idleTimeoutFor(ramp + 2 * delay);
// The server ports stay out of the ephemeral range that the 100,000 client ports fill (see freePortRun).
const server = await startServerProcess('cluster', [
  ...serverArgs({ idleTimeout: idle, redis: args.redis, prefix: `c100k${randomBytes(3).toString('hex')}` }),
  '--workers', String(serverWorkers), '--worker-ports', 'consecutive',
], { port: await freePortRun(serverWorkers) });
let failed = true;
try {
  const urls = Array.from({ length: serverWorkers }, (_, i) => `ws://127.0.0.1:${server.port + i}`);
  console.log(`bench-c100k: ${serverWorkers} server processes (supervisor pid ${server.pid}) on ports ${server.port}-${server.port + serverWorkers - 1}, bridged by ${args.redis}; engine ${server.engine}`);
  const copyCpu = new CopyCpuMeter(clients);
  const { summary, files } = await runSwarm(
    `${serverWorkers} server processes via Redis`,
    { ...swarmOptions, url: urls.join(','), serverPid: server.pid },
    { dir: args.out, name: `c100k-${stamp()}` },
    false,
    (swarm) => swarm.on('tick', copyCpu.add),
  );
  const c = summary.counters;
  const broadcasts = broadcastCount(summary.options);
  const targets: Target[] = [
    { name: `${clients} connected at once`, measured: `peak ${summary.peakConnected}`, pass: summary.peakConnected === clients },
    { name: 'every echo sequence completed', measured: `${c.completed} of ${clients}, ${clients - c.completed} not`, pass: c.completed === clients },
    {
      name: 'every broadcast reached every client',
      measured: `${broadcasts} broadcasts, ${c.published} published, ${c.delivered} of ${c.published * c.subscribed} copies delivered (lost ${summary.lostDeliveries})`,
      pass: c.published === broadcasts && c.subscribed === clients && summary.lostDeliveries === 0,
    },
    ...latencyTargets(summary),
  ];
  for (const line of targetLines(targets)) console.log(line);
  console.log(fanoutFloorLine(copyCpu.result(), clients));
  const perConnection = summary.server?.bytesPerConnection != null ? `, ${Math.round(summary.server.bytesPerConnection)} B per connection` : '';
  const rss = summary.server ? `${(summary.server.rssPeakBytes / 2 ** 20).toFixed(0)} MiB RSS at the peak, all server processes together${perConnection}` : 'server not sampled';
  console.log(`server: ${rss}; busiest server process ${Math.round(summary.server?.cpuMaxPct ?? NaN)}%, busiest swarm process ${Math.round(summary.clientCpuMaxPct)}%; saturated: ${summary.saturated}`);
  console.log(csvLine(files));
  failed = targets.some((t) => t.pass === false);
} catch (err) {
  console.error(`bench-c100k: ${(err as Error).message}`);
} finally {
  await server.stop();
}
finishBench(args, failed);

/**
 * The latency targets: echo p99 under ECHO_P99_MS and fanout p99 under FANOUT_P99_MS, each only as the
 * server's figure, with the swarm's own loop delay p99 under LOOP_P99_MS (harness-share.ts). A p99 the
 * swarm's delay owns fails and says so, rather than passing or failing as the server's.
 */
function latencyTargets(summary: RunSummary): Target[] {
  const loop = summary.loop;
  const owned = (name: 'rtt' | 'fanout', label: string, limit: number): Target => {
    const latency = summary[name];
    const target = `${label} p99 < ${limit} ms`;
    if (!latency || !loop) return { name: target, measured: latency ? `${latency.p99.toFixed(2)} ms, swarm loop not sampled` : 'nothing timed', pass: false };
    const verdict = ownership(latency, loop)!;
    return { name: target, measured: ownershipText(name, latency, loop, verdict), pass: latency.p99 < limit && verdict.owner !== 'swarm' };
  };
  return [
    owned('rtt', 'echo', ECHO_P99_MS),
    owned('fanout', 'fanout', FANOUT_P99_MS),
    { name: `swarm's own loop delay p99 < ${LOOP_P99_MS} ms`, measured: loop ? `${loop.p99.toFixed(2)} ms (max ${loop.max.toFixed(2)})` : 'not sampled', pass: loop ? loop.p99 < LOOP_P99_MS : false },
  ];
}

/**
 * Whether this machine can give the fanout target at all: a broadcast's copies need their CPU on both
 * sides (copy-cpu.ts), and on this machine's cores the last copy cannot arrive sooner than that allows.
 */
function fanoutFloorLine(cpu: CopyCpu | null, clients: number): string {
  if (!cpu) return 'fanout floor: not measured (no copy arrived while every client was connected)';
  const cores = availableParallelism();
  const floor = fanoutFloorSeconds(cpu, clients, cores) * 1000;
  const budget = ((FANOUT_P99_MS / 1000) * cores) / clients;
  const verdict = floor >= FANOUT_P99_MS
    ? `so fanout p99 < ${FANOUT_P99_MS} ms cannot be met on this machine: the server and the swarm together would need at most ${(budget * 1e6).toFixed(1)} us per copy`
    : `under the ${FANOUT_P99_MS} ms target`;
  return `fanout floor: ${copyCpuText(cpu)}; ${clients.toLocaleString('en')} copies need at least ${Math.round(floor)} ms of this machine's ${cores} cores, ${verdict}`;
}
