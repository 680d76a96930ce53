/**
 * `--workers`: one supervisor, several server processes bridged by the real Redis, on one shared port or on
 * consecutive ports; a killed worker is restarted, a signal stops them all.
 */
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnListening } from '../server/listening.js';
import { Swarm } from '../clients/swarm/swarm.js';
import { TestClient } from './helpers/client.js';
import { onFreePort } from './helpers/ports.js';
import { isAlive, pidOf } from './helpers/process.js';
import { Redis } from 'ioredis';
import { eventually } from './helpers/server.js';
import { REDIS_URL, requireRedis } from './helpers/services.js';

const CLI = fileURLToPath(new URL('../server/cli.js', import.meta.url));

interface Supervisor {
  child: ChildProcess;
  port: number;
  exited: Promise<number | null>;
}

/** Starts a supervisor on `port` and waits for its listening line; rejects with its output if it exits first. */
async function startSupervisor(port: number, args: string[]): Promise<Supervisor> {
  let spawned: ChildProcess | null = null;
  // A failing assertion must not leave the supervisor and its workers running after the test.
  after(async () => {
    if (spawned && spawned.exitCode === null && spawned.signalCode === null) {
      spawned.kill('SIGTERM');
      await once(spawned, 'exit');
    }
  });
  const { child, exited } = await spawnListening([process.execPath, CLI, '--host', '127.0.0.1', '--port', String(port), '--shutdown-timeout', '500', '--bench', ...args], {
    label: 'the supervisor',
    onSpawn: (child) => (spawned = child),
  });
  return { child, port, exited };
}

/** A supervisor on free ports (two consecutive ones at most are asked for here). */
const supervisor = (args: string[]): Promise<Supervisor> => onFreePort((port) => startSupervisor(port, args), { span: 2 });

describe('--workers', () => {
  it('refuses more than one worker without --redis, naming the flags', () => {
    const run = spawnSync(process.execPath, [CLI, '--workers', '2'], { encoding: 'utf8' });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /--workers above 1 needs --redis/);
    const bad = spawnSync(process.execPath, [CLI, '--workers', '0'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--workers must be an integer from 1 to 64 \(got 0\)/);
  });

  it('stops at once when a worker cannot listen at start, instead of restarting it forever', async () => {
    await requireRedis();
    const taken = net.createServer();
    const port = await onFreePort((candidate) => new Promise<number>((resolve, reject) => {
      taken.once('error', reject).listen(candidate, '127.0.0.1', () => resolve(candidate));
    }));
    try {
      const started = Date.now();
      const run = spawnSync(process.execPath, [CLI, '--host', '127.0.0.1', '--port', String(port), '--workers', '2', '--worker-ports', 'consecutive', '--redis', REDIS_URL], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(run.status, 1, `exit status (stdout:\n${run.stdout}\nstderr:\n${run.stderr})`);
      assert.match(run.stderr, new RegExp(`worker 1 \\(port ${port}\\) exited \\(code 1\\) before it listened: .*cannot listen on 127\\.0\\.0\\.1:${port}`));
      assert.doesNotMatch(run.stdout + run.stderr, /restarting in/, 'no worker was restarted');
      assert.ok(Date.now() - started < 10_000, 'it gave up at once');
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('shares one port: the kernel spreads connections over the workers', async () => {
    await requireRedis();
    const { child, port, exited } = await supervisor(['--workers', '2', '--redis', REDIS_URL, '--prefix', `w${randomBytes(3).toString('hex')}`]);
    const pids = new Set<number>();
    for (let i = 0; i < 20; i++) pids.add(await pidOf(port));
    assert.equal(pids.size, 2, 'both workers answered');
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    for (const pid of pids) await eventually(() => !isAlive(pid));
  });

  it('its workers end with it when the supervisor is killed outright (SIGKILL), freeing their ports', async () => {
    await requireRedis();
    const { child, port, exited } = await supervisor(['--workers', '2', '--worker-ports', 'consecutive', '--redis', REDIS_URL, '--prefix', `w${randomBytes(3).toString('hex')}`]);
    const pids = [await pidOf(port), await pidOf(port + 1)];
    child.kill('SIGKILL');
    assert.equal(await exited, null);
    for (const pid of pids) await eventually(() => !isAlive(pid), 10_000);
    for (const p of [port, port + 1]) {
      const free = await new Promise<boolean>((resolve) => {
        const probe = net.createServer().once('error', () => resolve(false)).listen(p, '127.0.0.1', () => probe.close(() => resolve(true)));
      });
      assert.ok(free, `port ${p} is free again`);
    }
  });

  it('on consecutive ports: one channel space across workers; a killed worker comes back', async () => {
    await requireRedis();
    const prefix = `w${randomBytes(3).toString('hex')}`;
    const { child, port, exited } = await supervisor(['--workers', '2', '--worker-ports', 'consecutive', '--redis', REDIS_URL, '--prefix', prefix]);
    const subs: TestClient[] = [];
    for (const p of [port, port + 1]) {
      const { client } = await TestClient.pubsub(`ws://127.0.0.1:${p}`);
      assert.equal((await client.request({ action: 'subscribe', payload: { channel: 'news' }, id: 1 })).event, 'subscribed');
      subs.push(client);
    }
    // The SUBSCRIBE reaches Redis a moment after the ack: wait until both workers listen there.
    const redis = new Redis(REDIS_URL);
    await eventually(async () => Number(((await redis.pubsub('NUMSUB', `${prefix}:broadcast:news`)) as [string, number])[1]) === 2);
    redis.disconnect();
    const { client: publisher } = await TestClient.pubsub(`ws://127.0.0.1:${port}`);
    publisher.send({ action: 'publish', payload: { channel: 'news', message: { n: 1 } } });
    for (const sub of subs) {
      assert.deepEqual((await sub.next()).message, { n: 1 });
      assert.ok(await sub.silentFor(200), 'exactly once');
    }
    for (const client of [...subs, publisher]) await client.close();

    const swarm = await new Swarm({ url: `ws://127.0.0.1:${port},ws://127.0.0.1:${port + 1}`, clients: 20, ramp: 0.2, delay: 0.2, rounds: 1, workers: 1 }).run();
    assert.equal(swarm.counters.completed, 20);
    for (const p of [port, port + 1]) {
      const stats = (await (await fetch(`http://127.0.0.1:${p}/stats`)).json()) as { connections_total: number };
      assert.ok(stats.connections_total >= 10, `the swarm spread its clients: ${stats.connections_total} on port ${p}`);
    }

    const first = await pidOf(port + 1);
    process.kill(first, 'SIGKILL');
    await eventually(async () => {
      try {
        return (await pidOf(port + 1)) !== first;
      } catch {
        return false;
      }
    }, 10_000);
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});
