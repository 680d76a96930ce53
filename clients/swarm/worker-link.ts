/**
 * How the engine reaches one worker: a process it forked on this machine, or one an agent forked on
 * another (clients/agents.ts, through Redis). The engine sends the same messages and hears the same
 * reports either way, so it merges counters and histograms of remote workers exactly as of local ones.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { FromWorker, ToWorker } from './ipc.js';

export interface WorkerLink {
  /** The worker's process id on this machine, for /proc; null for a remote worker. */
  readonly pid: number | null;
  /** Who runs it, for messages: `local` or the agent's name. */
  readonly where: string;
  send(message: ToWorker): void;
  onMessage(listener: (message: FromWorker) => void): void;
  /** Called once when the worker has gone: its exit code or signal, or why an agent lost it. */
  onExit(listener: (how: string) => void): void;
  /** Tells the worker the run is over for it (it exits on that). */
  disconnect(): void;
  /** Ends the worker at once (the run's last resort). */
  kill(): void;
}

const WORKER_PATH = new URL('./worker.js', import.meta.url);

/**
 * The Node flags of every worker. --expose-gc: a worker collects in the idle moments after its ramp
 * and between rounds (worker.ts, collectWhileIdle). --no-memory-reducer: V8 otherwise shrinks the heap
 * with full GCs whenever a worker looks idle, such as between two rounds, and the next round's first
 * clients wait behind them. --max-semi-space-size=4: V8 grows the young generation to 16 MiB a half
 * under a ramp's allocation rate and keeps it, about 20 MiB of RSS per worker that no client needs; at
 * 4 MiB a 15,000-client crowd worker held 191 MiB at its peak against 212-215 MiB, for the same CPU
 * per client (0.540-0.553 ms against 0.540-0.549 ms). SWARM_WORKER_NODE_ARGS adds some for diagnosis
 * (e.g. "--trace-gc" or "--cpu-prof"); the parent's own flags (such as --test) stay out.
 */
export function workerExecArgv(): string[] {
  return ['--expose-gc', '--no-memory-reducer', '--max-semi-space-size=4', ...(process.env.SWARM_WORKER_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [])];
}

/** Forks a worker process on this machine. */
export function forkWorker(): ChildProcess {
  return fork(WORKER_PATH, [], { execArgv: workerExecArgv(), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** A worker forked here. */
export class LocalWorker implements WorkerLink {
  readonly where = 'local';
  private readonly child = forkWorker();

  get pid(): number | null {
    return this.child.pid ?? null;
  }

  send(message: ToWorker): void {
    if (this.child.connected) this.child.send(message);
  }

  onMessage(listener: (message: FromWorker) => void): void {
    this.child.on('message', listener);
  }

  onExit(listener: (how: string) => void): void {
    this.child.once('exit', (code, signal) => listener(String(signal ?? code)));
  }

  disconnect(): void {
    if (this.child.connected) this.child.disconnect();
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}
