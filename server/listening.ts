/**
 * The line every server program of this project prints once it accepts connections, `listening:
 * ws://<host>:<port>/...`, and the one way to start such a program as a child process and wait for it.
 * Benchmarks and tests start servers through {@link spawnListening}. A supervisor (`--workers`) prints
 * the line once all its workers listen; its workers' own lines carry a `[worker n pid p] ` prefix and do
 * not match.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createInterface } from 'node:readline';

/** The listening line, and the port in it. */
export const LISTENING_LINE = /^listening: ws:\/\/[^\s/]+:(\d+)/;

export interface ListeningChild {
  child: ChildProcess;
  /** The port of its listening line. */
  port: number;
  /** Everything it printed so far (stdout lines, and stderr unless `stderr` is `inherit`). */
  output(): string;
  /** Resolves with its exit code (null when a signal ended it) once it has exited. */
  exited: Promise<number | null>;
}

export interface SpawnListeningOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Milliseconds to wait for the listening line before the child is killed. Default 10000. */
  timeoutMs?: number;
  /** What the errors call it. Default `server`. */
  label?: string;
  /** Where its stderr goes: kept in {@link ListeningChild.output} (`pipe`, the default) or passed on (`inherit`). */
  stderr?: 'pipe' | 'inherit';
  /** Each stdout line, as it comes (before and after the listening line). */
  onLine?: (line: string) => void;
  /** The child as soon as it is spawned: to track it for cleanup, or to read its stderr as well. */
  onSpawn?: (child: ChildProcess) => void;
  /**
   * What {@link ListeningChild.output} keeps: everything (`all`, the default: a test reads the log after
   * its requests), or what came before the listening line (`start`: a server that runs for hours under a
   * benchmark would otherwise grow the benchmark's memory with every line it prints).
   */
  keep?: 'all' | 'start';
}

/**
 * Spawns `command` and resolves once it prints its listening line.
 * @throws when it exits first or is silent for `timeoutMs` (then it is killed); the message holds what
 *   it printed.
 */
export async function spawnListening(command: readonly string[], options: SpawnListeningOptions = {}): Promise<ListeningChild> {
  const { timeoutMs = 10_000, label = 'server', stderr = 'pipe', onLine, onSpawn, keep = 'all' } = options;
  const spawnOptions: SpawnOptions = { stdio: ['ignore', 'pipe', stderr], env: options.env ?? process.env, cwd: options.cwd };
  const child = spawn(command[0], command.slice(1), spawnOptions);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  onSpawn?.(child);
  let out = '';
  let keeping = true;
  child.stderr?.on('data', (chunk) => keeping && (out += chunk));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${label} did not start within ${timeoutMs / 1000} s:\n${out}`));
    }, timeoutMs);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (keeping) out += `${line}\n`;
      onLine?.(line);
      const match = LISTENING_LINE.exec(line);
      if (match) {
        clearTimeout(timer);
        keeping = keep === 'all';
        resolve(Number(match[1]));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited with ${code} before listening:\n${out}`));
    });
  });
  return { child, port, output: () => out, exited };
}
