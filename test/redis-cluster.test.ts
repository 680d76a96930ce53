/**
 * The broker on Redis Cluster with sharded pub/sub (SPUBLISH/SSUBSCRIBE): a three-node cluster that the
 * test starts on free ports, three server instances each given a different seed node. Channels land on
 * different shards; every message reaches every subscriber on every instance exactly once, in order;
 * redis-cli SPUBLISH reaches them too; the cache lives on the channel's shard. A second cluster loses
 * one master and gets it back: /health names the shard, its channels are delivered locally and counted,
 * the other shards keep bridging, and everything recovers by itself.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import calculateSlot from 'cluster-key-slot';
import { TestClient } from './helpers/client.js';
import { redisCluster, type RedisClusterProcess } from './helpers/redis-process.js';
import { eventually, startServer, type RunningServer } from './helpers/server.js';
import { DEFAULT_PREFIX } from '../server/options.js';

async function subscriber(server: RunningServer, channels: string[]): Promise<TestClient> {
  const { client } = await TestClient.pubsub(server.ws);
  for (const channel of channels) {
    const ack = await client.request({ action: 'subscribe', payload: { channel }, id: channel });
    assert.equal(ack.event, 'subscribed');
  }
  return client;
}

describe('Redis Cluster broker (sharded pub/sub, own three-node cluster)', () => {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const channels = ['news', 'prices', 'sport', 'weather', 'tv', 'radio'];
  const redisNames = channels.map((c) => `${prefix}:broadcast:${c}`);
  const servers: RunningServer[] = [];
  let cluster: RedisClusterProcess;

  before(async () => {
    cluster = await redisCluster(3);
    const seeds = cluster.nodes.split(',');
    for (let i = 0; i < 3; i++) servers.push(await startServer({ redisCluster: seeds[i], prefix, expire: 30, publishKey: 'k' }));
    await allHealthy(servers);
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await cluster?.stop();
  });

  /** Shard channels with subscribers, per node (PUBSUB SHARDCHANNELS answers for its own node only). */
  async function shardChannels(): Promise<string[][]> {
    return Promise.all(
      cluster.ports.map(async (port) => {
        const { stdout } = await promisify(execFile)('redis-cli', ['-p', String(port), 'PUBSUB', 'SHARDCHANNELS', `${prefix}:*`]);
        return stdout.split('\n').map((l) => l.trim()).filter(Boolean);
      }),
    );
  }

  const shardNumSub = (name: string): Promise<number> => shardSubscribers(cluster, name);

  it('spreads the channels over the shards and delivers exactly once, in order, on every instance', async () => {
    const [a, b, c] = servers;
    const subs = [await subscriber(a, channels), await subscriber(b, channels), await subscriber(c, channels)];
    // Each instance subscribes each channel once, on the shard that owns the channel's slot.
    await eventually(async () => (await shardChannels()).flat().length === channels.length, 5000);
    const perNode = await shardChannels();
    assert.deepEqual(perNode.flat().sort(), [...redisNames].sort());
    assert.ok(perNode.filter((names) => names.length > 0).length >= 2, `channels on more than one shard: ${JSON.stringify(perNode)}`);
    for (const name of redisNames) assert.equal(await shardNumSub(name), 3, `${name}: one subscription per instance`);

    const { client: publisher } = await TestClient.pubsub(a.ws);
    for (let n = 1; n <= 20; n++) {
      for (const channel of channels) publisher.send({ action: 'publish', payload: { channel, message: { n } } });
    }
    for (const sub of subs) {
      const got = new Map<string, number[]>(channels.map((ch) => [ch, []]));
      for (let i = 0; i < 20 * channels.length; i++) {
        const frame = await sub.next();
        assert.equal(frame.event, 'message');
        got.get(frame.channel)!.push(frame.message.n);
      }
      for (const channel of channels) assert.deepEqual(got.get(channel), Array.from({ length: 20 }, (_, i) => i + 1), `${channel} in order, each once`);
      assert.ok(await sub.silentFor(200), 'nothing twice');
    }
    for (const client of [...subs, publisher]) await client.close();
  });

  it('delivers redis-cli SPUBLISH (JSON or not) and POST /publish to every instance', async () => {
    const [a, b, c] = servers;
    const subs = [await subscriber(a, ['sport']), await subscriber(c, ['sport'])];
    const name = `${prefix}:broadcast:sport`;
    await eventually(async () => (await shardNumSub(name)) === 2, 5000); // instances a and c
    assert.equal(await cluster.cli('SPUBLISH', name, '{"goal":1}'), '2');
    await cluster.cli('SPUBLISH', name, 'plain text');
    const res = await fetch(`${b.http}/publish`, {
      method: 'POST',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'sport', message: { goal: 2 } }),
    });
    assert.equal(res.status, 202);
    for (const sub of subs) {
      const cached = await sub.next(); // the first test's last message on sport, kept by --expire
      assert.deepEqual([cached.cached, cached.message], [true, { n: 20 }]);
      assert.deepEqual((await sub.next()).message, { goal: 1 });
      assert.equal((await sub.next()).message, 'plain text');
      assert.deepEqual((await sub.next()).message, { goal: 2 });
    }
    for (const client of subs) await client.close();
  });

  it('keeps the last message in the cluster with its TTL, and gives it to a subscriber on another instance', async () => {
    const [a, , c] = servers;
    const { client: publisher } = await TestClient.pubsub(a.ws);
    const ack = await publisher.request({ action: 'publish', payload: { channel: 'weather', message: { rain: true } }, id: 'p' });
    assert.equal(ack.event, 'published');
    const name = `${prefix}:broadcast:weather`;
    await eventually(async () => (await cluster.cli('GET', name)) === '{"rain":true}');
    const ttl = Number(await cluster.cli('TTL', name));
    assert.ok(ttl > 0 && ttl <= 30, `TTL ${ttl}`);
    const { client: late } = await TestClient.pubsub(c.ws);
    await late.request({ action: 'subscribe', payload: { channel: 'weather' }, id: 1 });
    const cached = await late.next();
    assert.equal(cached.cached, true);
    assert.deepEqual(cached.message, { rain: true });
    const stats = (await (await fetch(`${c.http}/stats`)).json()) as { redis: string; broker: { kind: string; state: string } };
    assert.equal(stats.redis, 'ready', 'the Redis state, not "not configured"');
    assert.equal(stats.broker.kind, 'redis-cluster');
    assert.equal(stats.broker.state, 'ready');
    await publisher.close();
    await late.close();
  });
});

describe('Redis Cluster outage (one shard killed and restarted, own three-node cluster)', () => {
  it('degrades /health naming the shard, delivers its channels locally and counts them, and recovers by itself', async () => {
    const cluster = await redisCluster(3);
    const seeds = cluster.nodes.split(',');
    const a = await startServer({ redisCluster: seeds[0] });
    const b = await startServer({ redisCluster: seeds[1] });
    try {
      await allHealthy([a, b]);
      // One channel on the shard that will die, one on a shard that stays.
      const lostPort = cluster.ports[2];
      const ownsSlot = await slotsOwnedBy(lostPort);
      const names = ['news', 'prices', 'sport', 'weather', 'tv', 'radio', 'films', 'books'];
      const onLost = names.find((c) => ownsSlot(calculateSlot(`${DEFAULT_PREFIX}:broadcast:${c}`)));
      const onKept = names.find((c) => !ownsSlot(calculateSlot(`${DEFAULT_PREFIX}:broadcast:${c}`)));
      assert.ok(onLost && onKept, `channels on both sides of the outage among ${names.join(',')}`);
      const subA = await subscriber(a, [onLost, onKept]);
      const subB = await subscriber(b, [onLost, onKept]);
      const { client: publisher } = await TestClient.pubsub(a.ws);
      const send = (channel: string, message: unknown): void => publisher.send({ action: 'publish', payload: { channel, message } });
      send(onLost, 'before');
      for (const sub of [subA, subB]) assert.equal((await sub.next()).message, 'before');

      await cluster.killNode(2);
      await eventually(async () => (await fetch(`${a.http}/health`)).status === 503, 5000);
      const health = (await (await fetch(`${a.http}/health`)).json()) as { state: string };
      assert.equal(health.state, `shard 127.0.0.1:${lostPort} unreachable`);
      send(onLost, 'during');
      send(onKept, 'kept');
      const gotA = [await subA.next(), await subA.next()].map((f) => [f.channel, f.message]).sort();
      assert.deepEqual(gotA, [[onKept, 'kept'], [onLost, 'during']].sort(), 'local delivery goes on for the lost shard');
      const gotB = await subB.next();
      assert.deepEqual([gotB.channel, gotB.message], [onKept, 'kept'], 'the other shards still bridge');
      assert.ok(await subB.silentFor(300), 'the lost shard cannot carry the message to B');
      const during = (await a.stats()).broker;
      assert.deepEqual([during.lost_in_outage, during.outages], [1, 1]);

      await cluster.startNode(2);
      await allHealthy([a, b]);
      // B's shard subscriber comes back to the restarted node by itself; try until a message gets through.
      let n = 0;
      await eventually(async () => {
        send(onLost, { after: ++n });
        return (await subB.next(500).catch(() => null)) !== null;
      }, 10_000);
      send(onLost, 'final');
      const seen = new Set<number>();
      for (let frame = await subB.next(); frame.message !== 'final'; frame = await subB.next()) {
        assert.equal(frame.channel, onLost);
        assert.ok(!seen.has(frame.message.after), `each message once: ${JSON.stringify(frame)}`);
        seen.add(frame.message.after);
      }
      assert.ok(await subB.silentFor(300), 'nothing after the last one');
      assert.deepEqual([(await a.stats()).connections, (await b.stats()).connections], [2, 1], 'no client connection was dropped');
      for (const client of [subA, subB, publisher]) await client.close();
    } finally {
      await Promise.all([a.close(), b.close()]);
      await cluster.stop();
    }
  });
});

/** Subscribers of a shard channel: SHARDNUMSUB answers for its own node only, so ask every node. */
async function shardSubscribers(cluster: RedisClusterProcess, name: string): Promise<number> {
  const counts = await Promise.all(
    cluster.ports.map(async (port) => {
      const { stdout } = await promisify(execFile)('redis-cli', ['-p', String(port), 'PUBSUB', 'SHARDNUMSUB', name]).catch(() => ({ stdout: '\n0' }));
      return Number(stdout.trim().split('\n')[1] ?? 0);
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

/** Waits (10 s at most) until every server's /health answers 200. */
async function allHealthy(servers: RunningServer[]): Promise<void> {
  await eventually(async () => (await Promise.all(servers.map((s) => fetch(`${s.http}/health`)))).every((r) => r.status === 200), 10_000);
}

/**
 * A's and B's subscribers on `channel`, both seen by the channel's shard, and a publisher on A whose
 * first message ('before') both have got.
 */
async function publishingPair(cluster: RedisClusterProcess, a: RunningServer, b: RunningServer, channel: string) {
  const subA = await subscriber(a, [channel]);
  const subB = await subscriber(b, [channel]);
  await eventually(async () => (await shardSubscribers(cluster, `${DEFAULT_PREFIX}:broadcast:${channel}`)) === 2, 5000);
  const { client: publisher } = await TestClient.pubsub(a.ws);
  const send = (message: unknown): void => publisher.send({ action: 'publish', payload: { channel, message } });
  send('before');
  for (const sub of [subA, subB]) assert.equal((await sub.next()).message, 'before');
  return { subA, subB, publisher, send };
}

/** The `n` of every message up to the one that says 'final' (which must be the last). */
async function untilFinal(sub: TestClient, channel: string): Promise<number[]> {
  const seen: number[] = [];
  for (let frame = await sub.next(); frame.message !== 'final'; frame = await sub.next()) {
    assert.equal(frame.channel, channel);
    seen.push(frame.message.n);
  }
  assert.ok(await sub.silentFor(300), 'nothing after the last one');
  return seen;
}

/** A predicate: whether the slot lies in one of the ranges the node on `port` owns (CLUSTER NODES, its `myself` line). */
async function slotsOwnedBy(port: number): Promise<(slot: number) => boolean> {
  const { stdout } = await promisify(execFile)('redis-cli', ['-p', String(port), 'CLUSTER', 'NODES']);
  const myself = stdout.split('\n').find((line) => line.includes('myself'));
  assert.ok(myself, `CLUSTER NODES of ${port} has a myself line`);
  const ranges = myself.trim().split(' ').slice(8).map((r) => r.split('-').map(Number));
  return (slot) => ranges.some(([from, to = from]) => slot >= from && slot <= to);
}

describe('Redis Cluster failover (a master killed, its replica takes over; own cluster of 3 masters and 3 replicas)', () => {
  it('bridges the failed shard again through the promoted replica, without the old master, and loses no client', async () => {
    const cluster = await redisCluster(3, { replicas: 1, nodeTimeoutMs: 1000 });
    const seeds = cluster.nodes.split(',');
    const a = await startServer({ redisCluster: seeds[0] });
    const b = await startServer({ redisCluster: seeds[1] });
    try {
      await allHealthy([a, b]);
      const before = await clusterNodes(cluster.ports[0]);
      const channel = 'news';
      const slot = calculateSlot(`${DEFAULT_PREFIX}:broadcast:${channel}`);
      const master = before.find((node) => node.master && node.owns(slot));
      assert.ok(master, `a master owns slot ${slot}: ${JSON.stringify(before)}`);
      const replica = before.find((node) => node.replicaOf === master.id);
      assert.ok(replica, `master ${master.port} has a replica`);
      const masterIndex = cluster.ports.indexOf(master.port);

      const { subA, subB, publisher, send } = await publishingPair(cluster, a, b, channel);

      // Publish every 20 ms from the kill until well after the failover, so messages meet each phase:
      // the dead master, the probe's verdict, the promoted replica before and after B subscribes to it.
      let n = 0;
      const ticker = setInterval(() => send({ n: ++n }), 20);
      let healthAfter = 0;
      let firstAfter = 0;
      const earlyB: number[] = [];
      try {
        await cluster.killNode(masterIndex);
        // The replica is promoted after the node timeout (1 s) and an election; the old master stays dead.
        await eventually(async () => {
          const me = (await clusterNodes(replica.port)).find((node) => node.port === replica.port);
          return me?.master === true && me.owns(slot);
        }, 15_000);
        await allHealthy([a, b]);
        healthAfter = n;
        // B's shard subscriber has moved to the new master once a message published now reaches it.
        await eventually(async () => {
          const frame = await subB.next(1000).catch(() => null);
          if (frame !== null) earlyB.push(frame.message.n);
          if (frame !== null && frame.message.n > healthAfter) firstAfter = frame.message.n;
          return firstAfter > 0;
        }, 15_000);
      } finally {
        clearInterval(ticker);
      }
      const last = n;
      send('final');
      // A's own subscriber gets every message exactly once and in order: through the cluster, or locally
      // (and counted) while the shard was gone.
      assert.deepEqual(await untilFinal(subA, channel), Array.from({ length: last }, (_, i) => i + 1), 'A: every message once, in order');
      const gotB = [...earlyB, ...(await untilFinal(subB, channel))];
      assert.equal(new Set(gotB).size, gotB.length, `B: each message at most once: ${gotB.join(',')}`);
      assert.deepEqual(gotB, [...gotB].sort((x, y) => x - y), 'B: in publish order');
      const tail = gotB.filter((m) => m >= firstAfter);
      assert.deepEqual(tail, Array.from({ length: last - firstAfter + 1 }, (_, i) => firstAfter + i), 'B: every message once its subscriber is on the new master');
      const broker = (await a.stats()).broker;
      assert.equal(broker.outages, 1, 'the lost master counted as one outage');
      assert.equal(last - gotB.length, broker.lost_in_outage, `every message B missed is counted at A, none lost silently: ${JSON.stringify(broker)}`);
      const ackAfter = await publisher.request({ action: 'publish', payload: { channel, message: 'acked' }, id: 'p' });
      assert.equal(ackAfter.event, 'published');
      for (const sub of [subA, subB]) assert.equal((await sub.next()).message, 'acked');
      assert.deepEqual([(await a.stats()).connections, (await b.stats()).connections], [2, 1], 'no client connection was dropped');
      for (const client of [subA, subB, publisher]) await client.close();
    } finally {
      await Promise.all([a.close(), b.close()]);
      await cluster.stop();
    }
  });
});

describe('Redis Cluster hang (a master frozen, then let go; own three-node cluster)', () => {
  it('goes on delivering locally while the shard hangs, and delivers each message once in all', async () => {
    const cluster = await redisCluster(3);
    const seeds = cluster.nodes.split(',');
    const a = await startServer({ redisCluster: seeds[0] });
    const b = await startServer({ redisCluster: seeds[1] });
    const frozen = 2;
    try {
      await allHealthy([a, b]);
      const ownsSlot = await slotsOwnedBy(cluster.ports[frozen]);
      const channel = ['news', 'prices', 'sport', 'weather', 'tv', 'radio', 'films', 'books'].find((c) => ownsSlot(calculateSlot(`${DEFAULT_PREFIX}:broadcast:${c}`)));
      assert.ok(channel, 'a channel on the shard that will hang');
      const { subA, subB, publisher, send } = await publishingPair(cluster, a, b, channel);

      let n = 0;
      const ticker = setInterval(() => send({ n: ++n }), 20);
      const gotA: number[] = [];
      try {
        cluster.pauseNode(frozen);
        await eventually(async () => (await fetch(`${a.http}/health`)).status === 503, 5000);
        /** Reads A's subscriber until a message published after `mark` has come, keeping what came. */
        const receivedBeyond = (mark: number): Promise<void> =>
          eventually(async () => {
            const frame = await subA.next(1000).catch(() => null);
            if (frame !== null) gotA.push(frame.message.n);
            return frame !== null && frame.message.n > mark;
          }, 5000);
        // Local delivery goes on: a message published now reaches A's subscriber within a few seconds,
        // though earlier ones still wait on the frozen node.
        await receivedBeyond(n);
        cluster.resumeNode(frozen);
        await allHealthy([a, b]);
        // And once the node is back, messages flow through it again.
        await receivedBeyond(n);
      } finally {
        clearInterval(ticker);
        cluster.resumeNode(frozen);
      }
      const last = n;
      send('final');
      const allA = [...gotA, ...(await untilFinal(subA, channel))];
      assert.deepEqual([...allA].sort((x, y) => x - y), Array.from({ length: last }, (_, i) => i + 1), 'A: every message exactly once (the frozen ones late)');
      const gotB = await untilFinal(subB, channel);
      assert.equal(new Set(gotB).size, gotB.length, `B: each message at most once: ${gotB.join(',')}`);
      const broker = (await a.stats()).broker;
      assert.ok(broker.lost_in_outage > 0, `messages published while the shard hung were delivered locally: ${JSON.stringify(broker)}`);
      assert.equal(last - gotB.length, broker.lost_in_outage, `every message B missed is counted at A: ${JSON.stringify(broker)}`);
      for (const client of [subA, subB, publisher]) await client.close();
    } finally {
      cluster.resumeNode(frozen);
      await Promise.all([a.close(), b.close()]);
      await cluster.stop();
    }
  });
});

interface ClusterNode {
  id: string;
  port: number;
  master: boolean;
  /** The master's id, for a replica. */
  replicaOf: string | null;
  owns(slot: number): boolean;
}

/** The cluster as the node on `port` sees it (CLUSTER NODES), failed nodes left out. */
async function clusterNodes(port: number): Promise<ClusterNode[]> {
  const { stdout } = await promisify(execFile)('redis-cli', ['-p', String(port), 'CLUSTER', 'NODES']);
  return stdout
    .trim()
    .split('\n')
    .map((line) => line.trim().split(' '))
    .filter(([, , flags]) => !flags.includes('fail'))
    .map(([id, address, flags, masterId, , , , , ...slots]) => {
      const ranges = slots.filter((r) => !r.startsWith('[')).map((r) => r.split('-').map(Number));
      return {
        id,
        port: Number(address.split('@')[0].split(':').pop()),
        master: flags.split(',').includes('master'),
        replicaOf: masterId === '-' ? null : masterId,
        owns: (slot: number) => ranges.some(([from, to = from]) => slot >= from && slot <= to),
      };
    });
}
