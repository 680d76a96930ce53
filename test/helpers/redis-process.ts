/**
 * A redis-server (or a Redis Cluster) of the test's own, on free ports, that the test may kill and
 * restart; the shared Redis of the machine is never stopped.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { onFreePort } from './ports.js';

export interface RedisProcess {
  port: number;
  url: string;
  /**
   * Restarts redis-server on `port` (after {@link kill}) and waits until it answers PING. The port lies
   * below the ephemeral range, so while it is down only another test's own bind could take it.
   */
  start(): Promise<void>;
  /** SIGKILLs it, as a crash would, and waits for it to be gone. */
  kill(): Promise<void>;
}

/** A redis-server child whose output is kept, so a node that exits at start can say why. */
interface RedisChild {
  child: ChildProcess;
  /** Why it is not running (exit code or spawn error, and its last output), or null while it runs. */
  failure(): string | null;
}

function spawnRedis(args: string[]): RedisChild {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let spawnError: Error | null = null;
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-2000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('error', (err) => (spawnError = err));
  return {
    child,
    failure() {
      if (spawnError) return `redis-server could not start (apt-get install redis-server): ${(spawnError as Error).message}`;
      if (child.exitCode === null && child.signalCode === null) return null;
      const last = output.trim().split('\n').slice(-3).join(' | ');
      return `redis-server exited (${child.exitCode ?? child.signalCode}): ${last}`;
    },
  };
}

/** Waits until redis-server answers PING on `port`, failing early with its own words if it exits. */
async function waitForPing(port: number, node: RedisChild, what: string, password?: string): Promise<void> {
  const run = promisify(execFile);
  const deadline = Date.now() + 10_000;
  const auth = password === undefined ? [] : ['-a', password, '--no-auth-warning'];
  while ((await run('redis-cli', ['-p', String(port), ...auth, 'PING'], { timeout: 2000 }).then((r) => r.stdout.trim(), () => '')) !== 'PONG') {
    const failure = node.failure();
    if (failure) throw new Error(`${what} on ${port}: ${failure}`);
    if (Date.now() > deadline) throw new Error(`${what} on ${port} did not answer PING within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A redis-server of the test's own, started on a free port; resolves once it answers PING. With
 * `password`, it requires it (requirepass), and `url` carries it.
 */
export async function redisProcess({ password }: { password?: string } = {}): Promise<RedisProcess> {
  let child: ChildProcess | null = null;
  const launch = async (port: number): Promise<void> => {
    const auth = password === undefined ? [] : ['--requirepass', password];
    const node = spawnRedis(['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...auth]);
    child = node.child;
    await waitForPing(port, node, 'redis-server', password);
  };
  const kill = async (): Promise<void> => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGKILL');
    await exited;
  };
  const port = await onFreePort(async (candidate) => {
    await launch(candidate).catch(async (err) => {
      await kill();
      throw err;
    });
    return candidate;
  });
  return { port, url: `redis://${password === undefined ? '' : `:${password}@`}127.0.0.1:${port}`, start: () => launch(port), kill };
}

export interface RedisClusterProcess {
  ports: number[];
  /** Seed nodes as `--redis-cluster` takes them: `127.0.0.1:port,...`. */
  nodes: string;
  /** Runs redis-cli in cluster mode (-c, following redirects) against the first node. */
  cli(...args: string[]): Promise<string>;
  /** Kills node `i` (SIGKILL); its slots are unreachable until {@link startNode} brings it back. */
  killNode(i: number): Promise<void>;
  /** Freezes node `i` (SIGSTOP): it keeps its connections open but answers nothing, as a hung host would. */
  pauseNode(i: number): void;
  /** Lets a frozen node `i` go on (SIGCONT). */
  resumeNode(i: number): void;
  /** Starts node `i` again on its port with its saved cluster config; resolves once it answers PING. */
  startNode(i: number): Promise<void>;
  /** Kills every node and removes their files. */
  stop(): Promise<void>;
}

/** Options of {@link redisCluster}. */
export interface RedisClusterOptions {
  /** Replicas per master (0: none). With replicas, the nodes give up on a silent peer after `nodeTimeoutMs`. */
  replicas?: number;
  /** cluster-node-timeout: how long a master may be silent before its replica takes over (Redis: 15 s). */
  nodeTimeoutMs?: number;
}

/**
 * A Redis Cluster of `size` masters, each with `replicas` replicas, on free ports, in a temporary folder,
 * created with `redis-cli --cluster create`; resolves once every node reports `cluster_state:ok`, all
 * agree on the slots, and every node knows every replica's master.
 */
export async function redisCluster(size = 3, options: RedisClusterOptions = {}): Promise<RedisClusterProcess> {
  const replicas = options.replicas ?? 0;
  const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'));
  const spawnNode = (port: number): RedisChild =>
    spawnRedis([
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--dir', dir,
      ...(options.nodeTimeoutMs ? ['--cluster-node-timeout', String(options.nodeTimeoutMs)] : []),
      // A replica's first sync starts at once instead of after 5 s (diskless sync waits for more replicas).
      '--repl-diskless-sync-delay', '0',
    ]);
  const ports: number[] = [];
  const nodes: RedisChild[] = [];
  const run = promisify(execFile);
  const cli = async (port: number, ...args: string[]): Promise<string> => (await run('redis-cli', ['-p', String(port), ...args])).stdout.trim();
  const killNode = async (i: number): Promise<void> => {
    const { child } = nodes[i];
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise((resolve) => (child.once('exit', resolve), child.kill('SIGKILL')));
  };
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((_, i) => killNode(i)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    while (nodes.length < size * (1 + replicas)) {
      // A node also listens on port + 10000 (the cluster bus): a start that finds either taken tries another.
      await onFreePort(
        async (port) => {
          const node = spawnNode(port);
          try {
            await waitForPing(port, node, 'redis-server (cluster node)');
          } catch (err) {
            if (node.child.exitCode === null && node.child.signalCode === null) {
              await new Promise((resolve) => (node.child.once('exit', resolve), node.child.kill('SIGKILL')));
            }
            throw err;
          }
          ports.push(port);
          nodes.push(node);
        },
        { alsoFree: 10_000 },
      );
    }
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes']);
    const deadline = Date.now() + 20_000;
    // cluster_state:ok comes before every node has learnt every other node's slots; a client that reads
    // the slot map from a node in between routes some channels to the wrong shard.
    const agreed = async (port: number): Promise<boolean> => {
      if (!(await cli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
      const check = await run('redis-cli', ['--cluster', 'check', `127.0.0.1:${port}`]).then((r) => r.stdout, () => '');
      return check.includes('All nodes agree about slots configuration') && check.includes('All 16384 slots covered');
    };
    // A replica that has never synced with its master refuses to take over from it (its data is "too old").
    const synced = async (port: number): Promise<boolean> => {
      const info = await cli(port, 'INFO', 'replication');
      return info.includes('role:master') || info.includes('master_link_status:up');
    };
    // Every node also knows every replica and whose it is: the replicas' flags reach the other nodes by
    // gossip after the slots agree, and a test that picks a master's replica from one node's view
    // found none there.
    const replicasKnown = async (port: number): Promise<boolean> => {
      const lines = (await cli(port, 'CLUSTER', 'NODES')).split('\n');
      return lines.filter((line) => {
        const [, , flags = '', master = '-'] = line.split(' ');
        return flags.split(',').includes('slave') && master !== '-';
      }).length === size * replicas;
    };
    for (const port of ports) {
      while (!(await agreed(port)) || !(await synced(port)) || !(await replicasKnown(port))) {
        if (Date.now() > deadline) throw new Error(`the cluster did not agree on its slots, or a replica did not sync or was not known to every node, within 20 s (node ${port})`);
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
    killNode,
    pauseNode: (i) => void nodes[i].child.kill('SIGSTOP'),
    resumeNode: (i) => void nodes[i].child.kill('SIGCONT'),
    async startNode(i) {
      await killNode(i);
      nodes[i] = spawnNode(ports[i]);
      await waitForPing(ports[i], nodes[i], 'redis-server (cluster node)');
    },
    stop,
  };
}
