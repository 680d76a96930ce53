/** The swarm's command line as a user runs it, for tests that read what it prints. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** The built swarm CLI (clients/cli.ts). */
export const SWARM = fileURLToPath(new URL('../../clients/cli.js', import.meta.url));

/**
 * Runs the swarm CLI with `args` to its end and resolves with what it printed; `workerNodeArgs` go to
 * every worker process (SWARM_WORKER_NODE_ARGS, e.g. "--trace-gc", whose lines come out on stdout).
 */
export async function runSwarm(args: string[], workerNodeArgs = ''): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [SWARM, ...args], {
    env: { ...process.env, SWARM_WORKER_NODE_ARGS: workerNodeArgs },
    maxBuffer: 16 * 2 ** 20,
  });
  return stdout;
}
