/** A server CLI as a child process, for tests that signal it, kill it or limit it. */
import { execFile, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { openFileCount, sampleProcess } from '../../clients/host/proc.js';
import { spawnListening } from '../../server/listening.js';

const CLI = fileURLToPath(new URL('../../server/cli.js', import.meta.url));

export interface ServerChild {
  child: ChildProcess;
  pid: number;
  port: number;
  ws: string;
  http: string;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
  /** Resolves with its exit code (null when a signal ended it) once it has exited. */
  exited: Promise<number | null>;
  /** SIGKILL, for a test's cleanup; resolves once it has exited. */
  kill(): Promise<void>;
}

/**
 * Starts `node server/cli.js --host 127.0.0.1 --bench <args>` and waits for its listening line (`args`
 * may hold `--no-bench`, or a surface's own flag, for a test of the defaults). With
 * `openFiles`, the process runs under `ulimit -n openFiles` (soft and hard); with `env`, in that
 * environment instead of this process's; with `node`, on that Node binary instead of this one.
 */
export async function spawnServer(args: string[], { openFiles, env, node }: { openFiles?: number; env?: NodeJS.ProcessEnv; node?: string } = {}): Promise<ServerChild> {
  const command = [node ?? process.execPath, CLI, '--host', '127.0.0.1', ...(args.includes('--port') ? [] : ['--port', '0']), ...(args.includes('--no-bench') ? [] : ['--bench']), ...args];
  const wrapped = openFiles ? ['/bin/bash', '-c', `ulimit -n ${openFiles} && exec "$@"`, 'bash', ...command] : command;
  const { child, port, output, exited } = await spawnListening(wrapped, { env });
  return {
    child,
    pid: child.pid!,
    port,
    ws: `ws://127.0.0.1:${port}`,
    http: `http://127.0.0.1:${port}`,
    output,
    exited,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** CPU seconds (user + system) a process has used. */
export function cpuSeconds(pid: number): number {
  return sampleProcess(pid)!.cpuMicros / 1e6;
}

/** Resident set size of a process, in bytes. */
export function rssBytes(pid: number): number {
  return sampleProcess(pid)!.rssBytes;
}

/** Open file descriptors of a process. */
export function openFiles(pid: number): number {
  return openFileCount(pid)!;
}

/** The pid that answers GET /stats on a new TCP connection (fetch would reuse one, and so one worker). */
export function pidOf(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/stats', agent: false }, (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve((JSON.parse(body) as { pid: number }).pid));
      })
      .on('error', reject);
  });
}

/**
 * Which server process took a new `/pubsub` connection: the instance part of the welcome's `connection`
 * (its first 8 hex digits), for a server that does not serve /stats on its port.
 */
export async function instanceOf(port: number): Promise<string> {
  const { TestClient } = await import('./client.js');
  const { client, welcome } = await TestClient.pubsub(`ws://127.0.0.1:${port}`);
  await client.close();
  return String(welcome.connection).slice(0, 8);
}

/** Whether a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs `node <script> <args>` to its end; resolves with its exit code and what it printed (never rejects). */
export function runScript(script: string, args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], { timeout: timeoutMs, maxBuffer: 16 * 2 ** 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}
