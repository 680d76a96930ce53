/**
 * The Redis broker with a real Redis: exactly-once delivery across three instances, publishes from
 * HTTP and from redis-cli, the cache, --prefix, and an outage of a Redis that the test kills and
 * restarts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { TestClient } from './helpers/client.js';
import { redisProcess } from './helpers/redis-process.js';
import { eventually, startServer, type RunningServer } from './helpers/server.js';
import { REDIS_URL, requireRedis } from './helpers/services.js';
import { DEFAULT_PREFIX } from '../server/options.js';

const redisCli = async (url: string, ...args: string[]): Promise<string> => {
  const { port } = new URL(url);
  const { stdout } = await promisify(execFile)('redis-cli', ['-p', port, ...args]);
  return stdout.trim();
};

/** Waits until `count` instances have subscribed `name` in Redis. */
async function subscribedInRedis(redis: Redis, name: string, count: number): Promise<void> {
  await eventually(async () => {
    const [, n] = (await redis.pubsub('NUMSUB', name)) as [string, number];
    return Number(n) === count;
  });
}

async function subscriber(server: RunningServer, channel: string): Promise<TestClient> {
  const { client } = await TestClient.pubsub(server.ws);
  const ack = await client.request({ action: 'subscribe', payload: { channel }, id: 's' });
  assert.equal(ack.event, 'subscribed');
  return client;
}

describe('Redis broker (shared Redis)', () => {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const servers: RunningServer[] = [];
  let redis: Redis;
  before(async () => {
    await requireRedis();
    redis = new Redis(REDIS_URL);
    for (let i = 0; i < 3; i++) servers.push(await startServer({ redis: REDIS_URL, prefix, expire: 5, publishKey: 'k' }));
    await eventually(async () => (await Promise.all(servers.map((s) => fetch(`${s.http}/health`)))).every((r) => r.status === 200));
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    redis.disconnect();
  });

  it('delivers each message exactly once, in order, to subscribers on every instance', async () => {
    const [a, b, c] = servers;
    const subs = [await subscriber(a, 'news'), await subscriber(b, 'news'), await subscriber(b, 'news'), await subscriber(c, 'news')];
    await subscribedInRedis(redis, `${prefix}:broadcast:news`, 3);
    const { client: publisher } = await TestClient.pubsub(a.ws);
    for (let n = 1; n <= 20; n++) publisher.send({ action: 'publish', payload: { channel: 'news', message: { n } } });
    for (const sub of subs) {
      const got: number[] = [];
      for (let i = 0; i < 20; i++) {
        const frame = await sub.next();
        assert.equal(frame.event, 'message');
        got.push(frame.message.n);
      }
      assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => i + 1));
      assert.ok(await sub.silentFor(200), 'nothing twice');
    }
    for (const client of [...subs, publisher]) await client.close();
  });

  it('acks a subscribe once the instance receives from the others: a message published right after the ack arrives', async () => {
    const [a, b] = servers;
    const { client: publisher } = await TestClient.pubsub(a.ws);
    const check = async (server: RunningServer, channel: string, round: number): Promise<void> => {
      const { client: sub } = await TestClient.pubsub(server.ws);
      assert.deepEqual(await sub.request({ action: 'subscribe', payload: { channel }, id: round }), { event: 'subscribed', channel, id: round });
      assert.equal((await publisher.request({ action: 'publish', payload: { channel, message: round }, id: round })).event, 'published');
      assert.deepEqual(await sub.next(), { event: 'message', channel, message: round }, `round ${round}`);
      await sub.close();
    };
    // On a running instance, a channel of its own each round: every subscribe makes b SUBSCRIBE anew.
    for (let round = 0; round < 10; round++) await check(b, `fresh-${round}`, round);
    // On an instance that has just started: its connection to Redis is still being made.
    for (let round = 10; round < 15; round++) {
      const started = await startServer({ redis: REDIS_URL, prefix });
      try {
        await check(started, `started-${round}`, round);
      } finally {
        await started.close();
      }
    }
    await publisher.close();
  });

  it('keeps one publisher\'s order through a burst of several Redis script calls', async () => {
    const [a, b] = servers;
    const sub = await subscriber(b, 'burst');
    await subscribedInRedis(redis, `${prefix}:broadcast:burst`, 1);
    const { client: publisher } = await TestClient.pubsub(a.ws);
    // 2,500 publishes in one TCP write: instance A reads them in one or a few event-loop turns, and each
    // turn goes to Redis as script calls of at most 1,000 messages.
    const socket = (publisher.ws as unknown as { _socket: Socket })._socket;
    socket.cork();
    for (let n = 1; n <= 2500; n++) publisher.send({ action: 'publish', payload: { channel: 'burst', message: n } });
    socket.uncork();
    for (let n = 1; n <= 2500; n++) assert.equal((await sub.next()).message, n);
    assert.ok(await sub.silentFor(200), 'nothing twice');
    for (const client of [sub, publisher]) await client.close();
  });

  it('delivers POST /publish and redis-cli PUBLISH (JSON or not) to every instance', async () => {
    const [a, b, c] = servers;
    const subs = [await subscriber(a, 'prices'), await subscriber(c, 'prices')];
    await subscribedInRedis(redis, `${prefix}:broadcast:prices`, 2);
    const res = await fetch(`${b.http}/publish`, {
      method: 'POST',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'prices', message: { eur: 1 } }),
    });
    assert.equal(res.status, 202);
    assert.equal(await redisCli(REDIS_URL, 'PUBLISH', `${prefix}:broadcast:prices`, '{"eur":2}'), '2');
    await redisCli(REDIS_URL, 'PUBLISH', `${prefix}:broadcast:prices`, 'plain text');
    for (const sub of subs) {
      assert.deepEqual((await sub.next()).message, { eur: 1 });
      assert.deepEqual((await sub.next()).message, { eur: 2 });
      assert.equal((await sub.next()).message, 'plain text');
    }
    for (const sub of subs) await sub.close();
  });

  it('keeps the last message in Redis with its expiry, and serves it to a subscriber on another instance', async () => {
    const [a, b] = servers;
    const { client: publisher } = await TestClient.pubsub(a.ws);
    await publisher.request({ action: 'publish', payload: { channel: 'weather', message: { sky: 'grey' } }, id: 1 });
    const key = `${prefix}:broadcast:weather`;
    assert.equal(await redisCli(REDIS_URL, 'GET', key), '{"sky":"grey"}');
    const ttl = Number(await redisCli(REDIS_URL, 'TTL', key));
    assert.ok(ttl > 0 && ttl <= 5, `TTL ${ttl} s`);
    const { client: late } = await TestClient.pubsub(b.ws);
    assert.equal((await late.request({ action: 'subscribe', payload: { channel: 'weather' }, id: 2 })).event, 'subscribed');
    assert.deepEqual(await late.next(), { event: 'message', channel: 'weather', message: { sky: 'grey' }, cached: true });
    await Promise.all([publisher.close(), late.close()]);
  });

  it('puts every Redis name under --prefix, user and session channels under their own names', async () => {
    const [a] = servers;
    const res = await fetch(`${a.http}/publish`, {
      method: 'POST',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'user:john:chat', message: 'hi' }),
    });
    assert.equal(res.status, 202);
    assert.equal(await redisCli(REDIS_URL, 'GET', `${prefix}:user:john:chat`), '"hi"');
    assert.equal(await redisCli(REDIS_URL, 'EXISTS', 'user:john:chat'), '0', 'nothing outside the prefix');
    const keys = (await redisCli(REDIS_URL, 'KEYS', `*${prefix}*`)).split('\n');
    assert.ok(keys.includes(`${prefix}:user:john:chat`));
    assert.ok(keys.every((k) => k.startsWith(`${prefix}:`)), `every key under the prefix: ${keys.join(' ')}`);
  });

  it('reports the broker in /stats and /metrics', async () => {
    const stats = await servers[0].stats();
    assert.equal(stats.redis, 'ready');
    assert.equal(stats.broker.kind, 'redis');
    assert.equal(stats.broker.lost_in_outage, 0);
    const metrics = await (await fetch(`${servers[0].http}/metrics`)).text();
    assert.match(metrics, /^pubsub_broker_up\{broker="redis"\} 1$/m);
    assert.match(metrics, /^pubsub_broker_lost_in_outage 0$/m);
  });
});

describe('Redis outages (a redis-server of the test own)', () => {
  it('a Redis that stops answering: /health 503 within --redis-timeout, POST /publish answered at once and delivered here, 200 again after', async () => {
    const redis = await redisProcess();
    const server = await startServer({ redis: redis.url, redisTimeout: 500, publishKey: 'k' });
    try {
      await eventually(async () => (await fetch(`${server.http}/health`)).status === 200, 10_000);
      const { client } = await TestClient.pubsub(server.ws);
      assert.equal((await client.request({ action: 'subscribe', payload: { channel: 'news' }, id: 1 })).event, 'subscribed');
      // Every command of every other client waits for 3 s: Redis is connected and says nothing.
      assert.equal(await redisCli(redis.url, 'CLIENT', 'PAUSE', '3000', 'ALL'), 'OK');
      const paused = Date.now();
      await eventually(async () => (await fetch(`${server.http}/health`)).status === 503, 2500);
      const health = (await (await fetch(`${server.http}/health`)).json()) as { state: string };
      assert.equal(health.state, 'not answering');
      const asked = Date.now();
      const res = await fetch(`${server.http}/publish`, { method: 'POST', headers: { authorization: 'Bearer k' }, body: JSON.stringify({ channel: 'news', message: 'meanwhile' }) });
      assert.equal(res.status, 202);
      assert.ok(Date.now() - asked < 500, `answered in ${Date.now() - asked} ms, not after the pause`);
      assert.ok(Date.now() - paused < 3000, 'all of it while Redis was paused');
      assert.deepEqual(await client.next(), { event: 'message', channel: 'news', message: 'meanwhile' });
      await eventually(async () => (await fetch(`${server.http}/health`)).status === 200, 10_000);
      assert.ok(((await server.stats()).broker as { lost_in_outage: number }).lost_in_outage >= 1, 'counted as lost to the other instances');
      await client.close();
    } finally {
      await server.close();
      await redis.kill();
    }
  });

  it('starts without Redis, degrades /health, and connects when Redis comes', async () => {
    const redis = await redisProcess();
    await redis.kill(); // the server starts while nothing answers on the port
    const server = await startServer({ redis: redis.url });
    try {
      const down = await fetch(`${server.http}/health`);
      assert.equal(down.status, 503);
      assert.equal(((await down.json()) as { status: string }).status, 'degraded');
      const { client } = await TestClient.pubsub(server.ws);
      assert.equal((await client.request({ action: 'publish', payload: { channel: 'news', message: 1 }, id: 1 })).event, 'published', 'works locally meanwhile');
      await redis.start();
      await eventually(async () => (await fetch(`${server.http}/health`)).status === 200, 10_000);
      await client.close();
    } finally {
      await server.close();
      await redis.kill();
    }
  });

  it('survives a kill: connections stay, local delivery goes on, losses are counted, subscriptions come back', async () => {
    const redis = await redisProcess();
    const a = await startServer({ redis: redis.url });
    const b = await startServer({ redis: redis.url });
    const admin = new Redis(redis.url, { retryStrategy: () => 100, maxRetriesPerRequest: null });
    admin.on('error', () => undefined);
    try {
      await eventually(async () => (await Promise.all([a, b].map((s) => fetch(`${s.http}/health`)))).every((r) => r.status === 200), 10_000);
      const onA = await subscriber(a, 'news');
      const onB = await subscriber(b, 'news');
      await subscribedInRedis(admin, `${DEFAULT_PREFIX}:broadcast:news`, 2);
      const { client: publisher } = await TestClient.pubsub(a.ws);

      await redis.kill();
      await eventually(async () => (await fetch(`${a.http}/health`)).status === 503, 10_000);
      for (let n = 1; n <= 3; n++) publisher.send({ action: 'publish', payload: { channel: 'news', message: { outage: n } } });
      for (let n = 1; n <= 3; n++) assert.deepEqual((await onA.next()).message, { outage: n }, 'local delivery goes on');
      assert.ok(await onB.silentFor(300), 'the other instance cannot get them');
      assert.equal((await a.stats()).broker.lost_in_outage, 3);

      await redis.start();
      await eventually(async () => (await Promise.all([a, b].map((s) => fetch(`${s.http}/health`)))).every((r) => r.status === 200), 10_000);
      await subscribedInRedis(admin, `${DEFAULT_PREFIX}:broadcast:news`, 2);
      publisher.send({ action: 'publish', payload: { channel: 'news', message: { after: 1 } } });
      assert.deepEqual((await onA.next()).message, { after: 1 });
      assert.deepEqual((await onB.next()).message, { after: 1 }, 'B resubscribed after the restart');
      assert.equal((await a.stats()).connections, 2, 'no client connection was dropped');
      assert.equal((await a.stats()).broker.outages, 1);
      for (const client of [onA, onB, publisher]) await client.close();
    } finally {
      admin.disconnect();
      await Promise.all([a.close(), b.close()]);
      await redis.kill();
    }
  });
});
