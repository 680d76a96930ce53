/**
 * `make demo-life`: Conway's Game of Life as django-c10k-demo played it, one WebSocket client per cell
 * on a cyclic grid. Each cell subscribes to its 8 neighbours' channels and publishes its state each
 * generation; the server only relays and knows nothing of the rules. The cells run in worker processes
 * (clients/demos/life/cells.ts); `--size 100` gives 10,000 cell clients and 80,000 subscriptions.
 *
 * Live (the default): cells publish also on `life:board` at a pace people can watch, and a page at
 * http://127.0.0.1:<page-port>/life draws the grid on a canvas until Ctrl-C.
 * `--check`: no page, no pacing; after `--generations` the grid the cells hold is compared with a
 * reference simulation from the same seed (clients/demos/life/rules.ts): identical, or exit 1. Prints
 * generations per second, the server's and the cells' CPU, and which side saturated.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { availableParallelism } from 'node:os';
import { checkHost, hostLine } from '../clients/host/host-check.js';
import type { FromCells, ToCells } from '../clients/demos/life/cells.js';
import { lifePage } from '../clients/demos/life/page.js';
import { simulate } from '../clients/demos/life/rules.js';
import { sampleProcess } from '../clients/host/proc.js';
import { interruptible } from '../clients/host/interrupt.js';
import { saturation } from '../clients/swarm/saturation.js';
import { requireIntegers, usageError } from '../server/command-line.js';
import { BENCH_HOST_CHECK_S, benchCli, interrupted, numeric } from './lib/run.js';
import { startServerProcess } from './lib/servers.js';
import { serverArgs } from '../server/options.js';

const args = await benchCli('demo-life', '$0 [flags]\n\nThe Game of Life, one WebSocket client per cell; the server only relays.')
  .option('size', { coerce: numeric, requiresArg: true, default: 32, describe: 'cells per side of the cyclic grid (100: 10,000 cell clients, 80,000 subscriptions)' })
  .option('generations', { coerce: numeric, requiresArg: true, default: 0, describe: 'generations to run; 0 = until Ctrl-C (live), 50 with --check' })
  .option('seed', { coerce: numeric, requiresArg: true, default: 42, describe: 'seed of the first generation (30% alive)' })
  .option('check', { type: 'boolean', default: false, describe: 'headless: run --generations as fast as they go, compare the grid with a local reference simulation, exit 1 if it differs' })
  .option('workers', { coerce: numeric, requiresArg: true, default: 0, describe: 'processes of cell clients; 0 = one per 2,500 cells, at least the cores' })
  .option('delay-ms', { coerce: numeric, requiresArg: true, default: 200, describe: 'live: pause of each cell before it publishes a generation' })
  .option('page-port', { coerce: numeric, requiresArg: true, default: 9080, describe: 'live: port of the page at /life' })
  .parseAsync();
const check = args.check as boolean;
const size = args.size as number;
const generations = (args.generations as number) || (check ? 50 : 0);
requireIntegers('demo-life', [['--size', size, 3], ['--generations', generations, 0], ['--seed', args.seed, 0], ['--workers', args.workers, 0], ['--delay-ms', args.delayMs, 0], ['--page-port', args.pagePort, 1]]);
const cellCount = size * size;
// Every cell is a connection to the one server process, which may hold 20,000 open files here.
const MAX_CELLS = 18_000;
if (cellCount > MAX_CELLS) {
  usageError('demo-life', `--size must be at most ${Math.floor(Math.sqrt(MAX_CELLS))} (each cell is a connection to one server process, and one process may hold at most 20,000 open files), got ${size}`);
}
const workers = (args.workers as number) || Math.max(availableParallelism(), Math.ceil(cellCount / 2500));

// Beside the figures, how fast this host is now (lower is a faster core).
if (check) console.log(hostLine(await checkHost(BENCH_HOST_CHECK_S)));
const server = await startServerProcess('ours', serverArgs({ maxSubscriptions: 16 }));
let exit = 0;
try {
  exit = await run();
} finally {
  await server.stop();
}
process.exit(exit);

async function run(): Promise<number> {
  const page = check ? null : await servePage(args.pagePort as number, server.url, size);
  console.log(`demo-life: ${size} x ${size} = ${cellCount} cell clients in ${workers} processes, ${cellCount * 8} subscriptions, seed ${args.seed}; ${check ? `${generations} generations, then the check` : `live at ${page}`}`);
  const children: ChildProcess[] = [];
  const done = new Map<number, number[]>();
  let subscribed = 0;
  let failure: string | null = null;
  let wake: () => void = () => undefined;
  const per = Math.ceil(cellCount / workers);
  for (let w = 0; w < workers; w++) {
    const from = w * per;
    const to = Math.min(cellCount, from + per);
    if (from >= to) break;
    const child = fork(new URL('../clients/demos/life/cells.js', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    child.on('message', (m: FromCells) => {
      if (m.type === 'subscribed') subscribed++;
      else if (m.type === 'done') done.set(m.from, m.states);
      else failure ??= m.error;
      wake();
    });
    child.on('exit', (code) => {
      if (!done.has(from)) failure ??= `a cell process exited (${code}) before it was done`;
      wake();
    });
    const start: ToCells = { type: 'start', url: server.url, size, seed: args.seed as number, generations, from, to, board: !check, delayMs: check ? 0 : (args.delayMs as number) };
    child.send(start);
  }
  const until = async (ready: () => boolean): Promise<void> => {
    while (!ready() && failure === null && !interrupted()) await new Promise<void>((resolve) => (wake = resolve));
  };
  const stopAll = (): void => children.forEach((c) => c.connected && c.disconnect());
  interruptible({ interrupt: () => wake() }); // Ctrl-C ends the wait, and the run
  try {
    await until(() => subscribed === children.length);
    if (failure !== null || interrupted()) return fail(failure ?? 'interrupted');
    console.log(`${cellCount} cells connected and subscribed to their neighbours; generation 0 goes out`);

    const pids = [server.pid, ...children.map((c) => c.pid ?? 0)];
    const before = new Map(pids.map((pid) => [pid, sampleProcess(pid)?.cpuMicros ?? NaN]));
    const started = performance.now();
    for (const child of children) child.send({ type: 'go' } satisfies ToCells);
    if (!check) {
      await until(() => false); // live until Ctrl-C
      if (failure !== null) return fail(failure);
      console.log('stopped');
      return 0;
    }
    await until(() => done.size === children.length);
    const seconds = (performance.now() - started) / 1000;
    if (failure !== null || interrupted()) return fail(failure ?? 'interrupted');
    const cpu = (pid: number) => (((sampleProcess(pid)?.cpuMicros ?? NaN) - (before.get(pid) ?? NaN)) / (seconds * 1e6)) * 100;
    const serverPct = cpu(server.pid);
    const cellPcts = children.map((c) => cpu(c.pid ?? 0));
    const grid = [...done.keys()].sort((a, b) => a - b).flatMap((from) => done.get(from)!);
    const reference = simulate(size, args.seed as number, generations);
    const differ = grid.reduce((n, alive, i) => n + (alive === reference[i] ? 0 : 1), 0);
    const relayed = cellCount * 8 * generations;
    console.log(`${generations} generations in ${seconds.toFixed(2)} s: ${(generations / seconds).toFixed(1)} generations/s, ${Math.round(relayed / seconds)} deliveries/s`);
    console.log(`cpu over the run: server ${Math.round(serverPct)}% of a core, cell processes ${cellPcts.map((p) => `${Math.round(p)}%`).join(' ')}; saturated: ${saturation(serverPct, Math.max(...cellPcts), serverPct + cellPcts.reduce((a, b) => a + b, 0))}`);
    console.log(`alive at the end: ${grid.reduce((a, b) => a + b, 0)} of ${cellCount}; reference: ${reference.reduce((a, b) => a + b, 0)}`);
    if (differ > 0) return fail(`the grid differs from the reference simulation in ${differ} cells`);
    console.log(`check PASS: the final grid equals the reference simulation (seed ${args.seed}, ${generations} generations)`);
    return 0;
  } finally {
    stopAll();
  }
}

function fail(why: string): number {
  console.error(`demo-life: ${why}`);
  return 1;
}

/** The page at /life (and nothing else), on its own port; resolves with its URL. */
function servePage(port: number, wsUrl: string, gridSize: number): Promise<string> {
  const html = lifePage(wsUrl, gridSize);
  const http = createHttpServer((req, res) => {
    if (req.url === '/life' || req.url === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    else if (req.url === '/favicon.ico') res.writeHead(204).end();
    else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the page is /life\n');
  });
  return new Promise((resolve, reject) => {
    http.once('error', (err) => reject(new Error(`--page-port ${port}: ${err.message}`)));
    http.listen(port, '127.0.0.1', () => resolve(`http://127.0.0.1:${port}/life`));
    http.unref();
  });
}
