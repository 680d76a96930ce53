/**
 * A redis-server (or a Redis Cluster) of the test's own, on free ports, that the test may kill and
 * restart; the shared Redis of the machine is never stopped.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
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

export interface RedisClusterProcess {
  ports: number[];
  /** Seed nodes as `--redis-cluster` takes them: `127.0.0.1:port,...`. */
  nodes: string;
  /** Runs redis-cli in cluster mode (-c, following redirects) against the first node. */
  cli(...args: string[]): Promise<string>;
  /** Kills every node and removes their files. */
  stop(): Promise<void>;
}

/**
 * A Redis Cluster of `size` masters (no replicas) on free ports, in a temporary folder, created with
 * `redis-cli --cluster create`; resolves once every node reports `cluster_state:ok` and all agree on the slots.
 */
export async function redisCluster(size = 3): Promise<RedisClusterProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'));
  const ports: number[] = [];
  while (ports.length < size) {
    const port = await freePort();
    // A node also listens on port + 10000 (the cluster bus), which must be free too.
    if (port + 10_000 <= 65_535 && !ports.includes(port)) ports.push(port);
  }
  const children = ports.map((port) =>
    spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--dir', dir,
    ], { stdio: 'ignore' }),
  );
  const run = promisify(execFile);
  const cli = async (port: number, ...args: string[]): Promise<string> => (await run('redis-cli', ['-p', String(port), ...args])).stdout.trim();
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((child) => child.exitCode === null && new Promise((resolve) => (child.once('exit', resolve), child.kill('SIGKILL')))));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      const deadline = Date.now() + 10_000;
      while ((await cli(port, 'PING').catch(() => '')) !== 'PONG') {
        if (Date.now() > deadline) throw new Error(`redis-server on ${port} (cluster node) did not answer within 10 s (apt-get install redis-server)`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    const deadline = Date.now() + 20_000;
    // cluster_state:ok comes before every node has learnt every other node's slots; a client that reads
    // the slot map from a node in between routes some channels to the wrong shard.
    const agreed = async (port: number): Promise<boolean> => {
      if (!(await cli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
      const check = await run('redis-cli', ['--cluster', 'check', `127.0.0.1:${port}`]).then((r) => r.stdout, () => '');
      return check.includes('All nodes agree about slots configuration') && check.includes('All 16384 slots covered');
    };
    for (const port of ports) {
      while (!(await agreed(port))) {
        if (Date.now() > deadline) throw new Error(`the cluster did not agree on its slots within 20 s (node ${port})`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    ports,
    nodes: ports.map((p) => `127.0.0.1:${p}`).join(','),
    cli: (...args) => cli(ports[0], '-c', ...args),
    stop,
  };
}
