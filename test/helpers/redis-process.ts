/**
 * A redis-server of the test's own, on a free port, that the test may kill and restart; the shared
 * Redis of the machine is never stopped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

export interface RedisProcess {
  port: number;
  url: string;
  /** Starts (or restarts) redis-server on `port` and waits until it answers PING. */
  start(): Promise<void>;
  /** SIGKILLs it, as a crash would, and waits for it to be gone. */
  kill(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

export async function redisProcess(): Promise<RedisProcess> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | null = null;
  return {
    port,
    url,
    async start() {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      child.once('error', (err) => {
        throw new Error(`redis-server could not start (apt-get install redis-server): ${err.message}`);
      });
      const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
      probe.on('error', () => undefined);
      await probe.connect().catch(() => undefined);
      await probe.ping();
      probe.disconnect();
    },
    async kill() {
      const running = child;
      if (!running || running.exitCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGKILL');
      await exited;
    },
  };
}
