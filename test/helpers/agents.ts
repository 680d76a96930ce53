/** `swarm agent` processes on this machine for tests, and the cleanup of their run's Redis keys. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

const SWARM = fileURLToPath(new URL('../../clients/cli.js', import.meta.url));
/** The machine's Redis, through which the engine and its agents talk; every test uses a key prefix of its own. */
export const REDIS = 'redis://127.0.0.1:6379';

export interface AgentProcess {
  child: ChildProcess;
  /** Resolves with the next line matching `pattern`. */
  line(pattern: RegExp): Promise<string>;
}

/** Starts an agent named `name` under Redis prefix `key`, connecting from `source`; resolves once it waits for a run. */
export function startAgent(key: string, name: string, source: string): Promise<AgentProcess> {
  const child = spawn(process.execPath, [SWARM, 'agent', '--coordinator', REDIS, '--coordinator-key', key, '--name', name, '--source-addresses', source], { stdio: ['ignore', 'pipe', 'inherit'] });
  const waiting: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const i = waiting.findIndex((w) => w.pattern.test(line));
    if (i >= 0) waiting.splice(i, 1)[0].resolve(line);
  });
  const agent: AgentProcess = { child, line: (pattern) => new Promise((resolve) => waiting.push({ pattern, resolve })) };
  return agent.line(/waiting for a run/).then(() => agent);
}

/** Stops the agents, waits for them to exit, and deletes every Redis key under `key`. */
export async function stopAgents(agents: AgentProcess[], key: string): Promise<void> {
  for (const agent of agents) agent.child.kill('SIGTERM');
  await Promise.all(agents.map((a) => (a.child.exitCode === null && a.child.signalCode === null ? new Promise((r) => a.child.once('exit', r)) : null)));
  const redis = new Redis(REDIS);
  const left = await redis.keys(`${key}:*`);
  if (left.length) await redis.del(...left);
  redis.disconnect();
}
