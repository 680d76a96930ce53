/**
 * `--workers N`: one supervisor process runs N server processes, bridged by Redis, either all on one
 * port (SO_REUSEPORT: the kernel spreads connections over them) or on consecutive ports. It restarts a
 * worker that dies after it has listened, with a growing pause, and on SIGINT/SIGTERM stops them all (each
 * says goodbye to its clients) before it exits. A worker that exits at start, before it ever listened
 * (a port taken, a bad flag), is fatal: restarting it could only fail the same way, forever.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { LISTENING_LINE } from './listening.js';
import { fileURLToPath } from 'node:url';

/** How the workers listen: all on one port (SO_REUSEPORT), or on consecutive ports. */
export const WORKER_PORTS = ['shared', 'consecutive'] as const;
export type WorkerPorts = (typeof WORKER_PORTS)[number];

export interface SupervisorOptions {
  workers: number;
  ports: WorkerPorts;
  /** The port asked for; 0 picks a free one (shared) or a free first port (consecutive). */
  port: number;
  host: string;
  /** Milliseconds each worker may take to say goodbye before it is killed. */
  shutdownTimeout: number;
  /**
   * The admin listener's port, or null for none: shared like `port`, or with consecutive ports each
   * worker on its own (`adminPort` + its index; 0: each a free one).
   */
  adminPort: number | null;
  /** The command-line flags every worker gets (the supervisor appends --port and --reuse-port). */
  argv: string[];
}

const CLI = fileURLToPath(new URL('./cli.js', import.meta.url));

/** Set in every worker's environment: the worker runs a server, never another supervisor. */
export const SUPERVISED_ENV = 'PUBSUB_SUPERVISED';

interface Worker {
  index: number;
  port: number;
  child: ChildProcess | null;
  restarts: number;
  /** Whether this worker has listened once since the supervisor started. */
  listened: boolean;
}

/**
 * Runs the workers until a signal stops them (then resolves), or until a worker exits before it ever
 * listened (then stops the others and rejects with what that worker printed last).
 */
export async function runSupervisor(options: SupervisorOptions): Promise<void> {
  const base = options.port || (await freePort(options.host));
  const workers: Worker[] = Array.from({ length: options.workers }, (_, index) => ({
    index,
    port: options.ports === 'shared' ? base : base + index,
    child: null,
    restarts: 0,
    listened: false,
  }));
  let stopping = false;
  let up = 0;
  let fail: (err: Error) => void = () => undefined;
  const shown = options.host === '0.0.0.0' ? '127.0.0.1' : options.host;
  console.log(`supervisor: ${options.workers} workers, ${options.ports === 'shared' ? `all on port ${base} (SO_REUSEPORT)` : `ports ${base}-${base + options.workers - 1}`}`);

  const start = (worker: Worker): void => {
    const ports = options.ports === 'shared' ? ['--reuse-port'] : options.adminPort ? ['--admin-port', String(options.adminPort + worker.index)] : [];
    const child = fork(CLI, [...options.argv, '--port', String(worker.port), ...ports], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, [SUPERVISED_ENV]: String(worker.index + 1) },
    });
    worker.child = child;
    const tag = `[worker ${worker.index + 1} pid ${child.pid}]`;
    let listening = false;
    let last = '';
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        console.log(`${tag} ${line}`);
        last = line;
        if (!listening && LISTENING_LINE.test(line)) {
          listening = true;
          worker.listened = true;
          if (++up === options.workers) {
            console.log(`listening: ws://${shown}:${base}/pubsub  (${options.workers} workers${options.ports === 'consecutive' ? `, ports ${base}-${base + options.workers - 1}` : ''})`);
          }
        }
      });
    }
    child.once('exit', (code, signal) => {
      worker.child = null;
      if (stopping) return;
      if (!worker.listened) {
        fail(new Error(`worker ${worker.index + 1} (port ${worker.port}) exited (${signal ?? `code ${code}`}) before it listened: ${last || 'it printed nothing'}`));
        return;
      }
      const pause = Math.min(10_000, 250 * 2 ** Math.min(worker.restarts, 6));
      worker.restarts++;
      console.error(`${tag} exited (${signal ?? `code ${code}`}); restarting in ${pause} ms (restart ${worker.restarts})`);
      setTimeout(() => {
        if (!stopping) start(worker);
      }, pause);
    });
  };
  for (const worker of workers) start(worker);

  await new Promise<void>((resolve, reject) => {
    const stop = async (why: string, err?: Error): Promise<void> => {
      if (stopping) {
        if (!err) process.exit(1); // a second signal: stop waiting
        return;
      }
      stopping = true;
      console.log(`${why}: stopping ${workers.filter((w) => w.child).length} workers`);
      await Promise.all(workers.map((w) => stopChild(w.child, options.shutdownTimeout + 2000)));
      console.log('stopped');
      if (err) reject(err);
      else resolve();
    };
    fail = (err) => void stop('a worker failed at start', err);
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
  });
}

async function stopChild(child: ChildProcess | null, killAfterMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  await exited;
  clearTimeout(timer);
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, host, () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
    probe.once('error', reject);
  });
}
