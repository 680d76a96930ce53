/**
 * Starts the servers a benchmark compares, each as a child process on a free port, so the swarm can read
 * its CPU and RSS from /proc and nothing it does shares the swarm's event loop.
 */
import { type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { catchInterrupts } from '../../clients/host/interrupt.js';
import { spawnListening } from '../../server/listening.js';
import { FLAGS, serverArgs } from '../../server/options.js';

/**
 * `ours`: the uWS pub/sub server; `baseline`: the ws server; `bare`: the bare-uWS reference; `cluster`:
 * ours under the --workers supervisor (give it --workers and --redis in `args`); `socketio`: the Socket.IO
 * peer (bench/socketio-server.ts), which the swarm loads with `--protocol socketio`.
 */
export type ServerKind = 'ours' | 'baseline' | 'bare' | 'cluster' | 'socketio';

export interface ServerProcess {
  kind: ServerKind;
  pid: number;
  port: number;
  /** `ws://127.0.0.1:<port>` */
  url: string;
  /** The engine line the server printed. */
  engine: string;
  /** The inspector's WebSocket URL when the server was started with `inspect` (see bench/lib/inspector.ts). */
  inspector: string | null;
  /** SIGTERM, then SIGKILL after 5 s; resolves when it has exited. */
  stop(): Promise<void>;
  /** Its `GET /stats` (our server's), parsed. */
  stats(): Promise<Record<string, any>>;
}

const SCRIPTS: Record<ServerKind, string> = {
  ours: '../../server/cli.js',
  cluster: '../../server/cli.js',
  baseline: '../../server/baseline/cli.js',
  bare: '../bare-uws.js',
  socketio: '../socketio-server.js',
};

const running = new Set<ChildProcess>();
let handlersInstalled = false;

/**
 * A benchmark stopped by Ctrl-C, SIGTERM or an exception must not leave its servers behind: they are
 * killed when the process exits. The first signal only interrupts the running swarm (the bench then
 * prints and writes what it measured, and stops its servers itself); a second one exits at once.
 */
function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
  catchInterrupts(() => console.error(`stopping ${running.size} server(s)`));
}

/** What {@link startServerProcess} may do besides passing the server its flags. */
export interface StartOptions {
  /** Port to listen on; 0 = any free one. */
  port?: number;
  /** Open the V8 inspector on a free loopback port, for a bench that must force a full GC (the soak). */
  inspect?: boolean;
  /** Another build of the same program (another checkout's `dist/server/cli.js`), to compare with this one. */
  script?: string;
  /** Milliseconds to wait for its listening line; default 10,000 (a supervisor of many workers needs more). */
  startTimeoutMs?: number;
}

/**
 * Starts a server and waits for its `listening:` line (server/listening.ts); `args` are its own flags. Ours
 * serves the benchmark surfaces (/echo, slow, /stats) unless `args` set them. Our server logs
 * warnings and errors only, unless `args` set `--log-level`: its start and stop lines would crowd the
 * bench's own output.
 */
export async function startServerProcess(kind: ServerKind, args: string[] = [], { port = 0, inspect = false, script: another, startTimeoutMs }: StartOptions = {}): Promise<ServerProcess> {
  const script = another ?? fileURLToPath(new URL(SCRIPTS[kind], import.meta.url));
  const ours = kind === 'ours' || kind === 'cluster';
  // The baseline and the Socket.IO peer take --port and --host as ours does; the bare server its port alone.
  const portArgs = kind === 'bare' ? [String(port)] : serverArgs({ port, host: '127.0.0.1' });
  const logArgs = ours && !args.includes(FLAGS.logLevel) ? serverArgs({ logLevel: 'warn' }) : [];
  const surfaceArgs = ours ? ['--bench'] : [];
  const nodeArgs = inspect ? ['--inspect=127.0.0.1:0'] : [];
  installHandlers();
  let child!: ChildProcess;
  let exited!: Promise<void>;
  // stderr goes on to ours, but for the inspector's own lines, whose URL is kept.
  let inspector: string | null = null;
  let inspectorSeen: Promise<void> = Promise.resolve();
  let engine = '';
  const { port: listening } = await spawnListening([process.execPath, ...nodeArgs, script, ...portArgs, ...logArgs, ...surfaceArgs, ...args], {
    label: `${kind} server`,
    keep: 'start',
    timeoutMs: startTimeoutMs,
    // The supervisor's workers prefix their lines with "[worker n pid p] ".
    onLine: (line) => (engine = /^(?:\[worker [^\]]*\] )?engine: (.*)$/.exec(line)?.[1] ?? engine),
    onSpawn: (spawned) => {
      child = spawned;
      running.add(child);
      exited = new Promise<void>((resolve) => child.once('exit', () => (running.delete(child), resolve())));
      if (!inspect) {
        child.stderr!.pipe(process.stderr);
        return;
      }
      inspectorSeen = new Promise<void>((resolve) => {
        createInterface({ input: child.stderr! }).on('line', (line) => {
          const url = /^Debugger listening on (ws:\/\/\S+)/.exec(line);
          if (url) {
            inspector = url[1];
            resolve();
          } else if (!/^(Debugger |For help, see: https:\/\/nodejs\.org|Waiting for the debugger)/.test(line)) process.stderr.write(`${line}\n`);
        });
      });
    },
  });
  await inspectorSeen; // printed before the program's first line
  return {
    kind,
    pid: child.pid!,
    port: listening,
    url: `ws://127.0.0.1:${listening}`,
    engine,
    inspector,
    stop: () => stop(child, exited),
    stats: async () => (await fetch(`http://127.0.0.1:${listening}/stats`)).json() as Promise<Record<string, any>>,
  };
}

/**
 * Starts a server, hands it to `body` and stops it when `body` is done, however it ends: the one shape of
 * "start what is measured, measure, stop in finally" of every bench.
 */
export async function withServer<T>(kind: ServerKind, args: string[], body: (server: ServerProcess) => Promise<T>, start: StartOptions = {}): Promise<T> {
  const server = await startServerProcess(kind, args, start);
  try {
    return await body(server);
  } finally {
    await server.stop();
  }
}

async function stop(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * The first of `count` consecutive free ports on 127.0.0.1 at or above `from`, below the ephemeral range
 * (32768-60999). A server on an ephemeral port shares that range with the clients' own ports, and every
 * client bind() that lands on the server's port has to be checked against each of its accepted sockets.
 */
export async function freePortRun(count: number, from = 20_000): Promise<number> {
  let base = from;
  for (let port = from; port < 32_768; port++) {
    if (!(await canListen(port))) base = port + 1;
    else if (port - base + 1 === count) return base;
  }
  throw new Error(`no ${count} consecutive free ports between ${from} and 32767`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/**
 * The server's --idle-timeout for a run whose clients may stay silent for `silentSeconds` (waiting for
 * the others to connect, then a round or a hold): that plus 30 s, in uWS's steps of 8 s, from 120 to 960.
 */
export function idleTimeoutFor(silentSeconds: number): number {
  return Math.min(960, Math.max(120, Math.ceil((silentSeconds + 30) / 8) * 8));
}

/** Exits 2 with a message naming the URL when Redis does not answer: the bridge is not optional here. */
export async function requireRedis(bench: string, url: string): Promise<void> {
  const { Redis } = await import('ioredis'); // only the benches that bridge processes pay for loading it
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    console.error(`${bench}: Redis at ${url} (--redis) does not answer: ${(err as Error).message}. The server processes need it to share broadcasts; start one (Debian: apt-get install redis-server) or pass --redis URL.`);
    process.exit(2);
  } finally {
    redis.disconnect();
  }
}
