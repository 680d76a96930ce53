/**
 * Monitors against this machine's PostgreSQL and Redis: NOTIFY becomes a message (and keeps doing so
 * after the monitor's backend is killed with pg_terminate_backend), a table trigger feeds a channel
 * with its rows (Channels-style data binding), and a Redis list's items are published in order, once,
 * across instances, including those a server had taken but not published when it died.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { pgNotify } from '../server/index.js';
import { TestClient } from './helpers/client.js';
import { spawnServer, type ServerChild } from './helpers/process.js';
import { eventually, startServer } from './helpers/server.js';
import { POSTGRES_URL, postgresForSuite, REDIS_URL, requireRedis } from './helpers/services.js';

const unique = (): string => randomBytes(4).toString('hex');

async function subscribed(base: string, channel: string): Promise<TestClient> {
  const { client } = await TestClient.pubsub(base);
  assert.equal((await client.request({ action: 'subscribe', payload: { channel }, id: 1 })).event, 'subscribed');
  return client;
}

async function statsOf(http: string): Promise<Record<string, any>> {
  return (await fetch(`${http}/stats`)).json() as Promise<Record<string, any>>;
}

describe('PostgreSQL LISTEN/NOTIFY monitor', () => {
  const db = postgresForSuite();

  it('--pg-notify: JSON payloads as they are, others as strings, on the mapped channel; listens again after pg_terminate_backend', async () => {
    const pgChannel = `orders_${unique()}`;
    const server = await spawnServer(['--pg-notify', POSTGRES_URL, '--pg-notify-channel', `${pgChannel}=orders`]);
    try {
      const client = await subscribed(server.ws, 'orders');
      await db.query('SELECT pg_notify($1, $2)', [pgChannel, '{"id":1,"total":9.5}']);
      assert.deepEqual(await client.next(), { event: 'message', channel: 'orders', message: { id: 1, total: 9.5 } });
      await db.query('SELECT pg_notify($1, $2)', [pgChannel, 'not json']);
      assert.deepEqual(await client.next(), { event: 'message', channel: 'orders', message: 'not json' });

      const killed = await db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [`uws-pubsub-monitor ${server.pid}`]);
      assert.equal(killed.rowCount, 1, 'the monitor had one backend');
      const name = `pg-notify:${pgChannel}`;
      await eventually(async () => {
        const m = (await statsOf(server.http)).monitors[name];
        return m.reconnects === 1 && m.state === 'watching';
      }, 10_000);
      await db.query('SELECT pg_notify($1, $2)', [pgChannel, '{"id":2}']);
      assert.deepEqual(await client.next(), { event: 'message', channel: 'orders', message: { id: 2 } });
      const m = (await statsOf(server.http)).monitors[name];
      assert.deepEqual(m, { state: 'watching', notifications: 3, published: 3, mapping_errors: 0, reconnects: 1, connection_errors: 1 });
      await client.close();
    } finally {
      await server.kill();
    }
  });

  it('data binding: a trigger NOTIFYs each insert, update and delete, and the mapping publishes the row on the table channel', async () => {
    const table = `items_${unique()}`;
    const pgChannel = `${table}_changes`;
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, name text)`);
    await db.query(`CREATE FUNCTION ${table}_notify() RETURNS trigger AS $$
      BEGIN
        PERFORM pg_notify('${pgChannel}', json_build_object('op', TG_OP, 'row', row_to_json(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END))::text);
        RETURN NULL;
      END $$ LANGUAGE plpgsql`);
    await db.query(`CREATE TRIGGER ${table}_changes AFTER INSERT OR UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${table}_notify()`);
    const running = await startServer({
      monitors: [
        pgNotify({ url: POSTGRES_URL, channels: [pgChannel] }, (n, publish) => {
          const change = JSON.parse(n.payload) as { op: string; row: unknown };
          if (change.op === 'UPDATE' && (change.row as { name: string }).name === 'boom') throw new Error('a mapping that fails');
          publish(`table:${table}`, { op: change.op.toLowerCase(), row: change.row });
        }),
      ],
    });
    try {
      const client = await subscribed(running.ws, `table:${table}`);
      await db.query(`INSERT INTO ${table} VALUES (1, 'one')`);
      await db.query(`UPDATE ${table} SET name = 'boom' WHERE id = 1`);
      await db.query(`UPDATE ${table} SET name = 'uno' WHERE id = 1`);
      await db.query(`DELETE FROM ${table} WHERE id = 1`);
      const messages = [await client.next(), await client.next(), await client.next()].map((f) => f.message);
      assert.deepEqual(messages, [
        { op: 'insert', row: { id: 1, name: 'one' } },
        { op: 'update', row: { id: 1, name: 'uno' } },
        { op: 'delete', row: { id: 1, name: 'uno' } },
      ]);
      const m = (await running.stats()).monitors[`pg-notify:${pgChannel}`];
      assert.equal(m.notifications, 4);
      assert.equal(m.mapping_errors, 1, 'the throwing mapping was counted, and the monitor went on');
      await client.close();
    } finally {
      await running.close();
      await db.query(`DROP TABLE ${table}; DROP FUNCTION ${table}_notify()`);
    }
  });

  it('listen() rejects, naming the source, when PostgreSQL cannot be reached', async () => {
    await assert.rejects(
      startServer({ monitors: [pgNotify({ url: 'postgres://postgres@127.0.0.1:1/test', channels: ['x'] })] }),
      /pg-notify: cannot LISTEN at postgres:\/\/postgres@127\.0\.0\.1:1\/test/,
    );
  });
});

describe('Redis list monitor', () => {
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  let servers: ServerChild[] = [];
  before(async () => {
    await requireRedis();
    await redis.connect();
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.kill()));
    redis.disconnect();
  });

  it('publishes pushed items in push order, once, to subscribers on every instance; what a dead server had taken comes first', async () => {
    const key = `jobs-${unique()}`;
    const prefix = `monitors-${unique()}`;
    // The state a server leaves when SIGKILLed between BLMOVE and LREM: items in the processing list.
    // BLMOVE ... RIGHT LEFT puts the newest taken at the head, so the oldest is at the tail.
    await redis.lpush(`${key}:processing`, JSON.stringify({ n: 1 }), JSON.stringify({ n: 2 }));
    const plain = await spawnServer(['--redis', REDIS_URL, '--prefix', prefix]);
    servers.push(plain);
    const elsewhere = await subscribed(plain.ws, 'jobs');
    const watcher = await spawnServer(['--redis', REDIS_URL, '--prefix', prefix, '--redis-list', `${key}=jobs`]);
    servers.push(watcher);
    // The recovered ones, oldest first, reached the subscriber on the other instance.
    assert.deepEqual((await elsewhere.next()).message, { n: 1 });
    assert.deepEqual((await elsewhere.next()).message, { n: 2 });
    const here = await subscribed(watcher.ws, 'jobs');
    for (let n = 3; n <= 52; n++) await redis.lpush(key, JSON.stringify({ n }));
    await redis.lpush(key, 'plain text');
    for (const client of [elsewhere, here]) {
      for (let n = 3; n <= 52; n++) assert.deepEqual((await client.next()).message, { n });
      assert.equal((await client.next()).message, 'plain text');
      assert.ok(await client.silentFor(200), 'nothing twice');
    }
    assert.equal(await redis.llen(key), 0);
    assert.equal(await redis.llen(`${key}:processing`), 0, 'every published item was confirmed');
    const m = (await statsOf(watcher.http)).monitors[`redis-list:${key}`];
    assert.deepEqual(m, { state: 'watching', items: 51, recovered: 2, redis_errors: 0 });
    await Promise.all([elsewhere.close(), here.close()]);
    await redis.del(key, `${key}:processing`);
  });

  it('two instances watching one key publish each item once between them', async () => {
    const key = `jobs-${unique()}`;
    const prefix = `monitors-${unique()}`;
    const a = await spawnServer(['--redis', REDIS_URL, '--prefix', prefix, '--redis-list', `${key}=shared`]);
    const b = await spawnServer(['--redis', REDIS_URL, '--prefix', prefix, '--redis-list', `${key}=shared`]);
    servers.push(a, b);
    const client = await subscribed(a.ws, 'shared');
    const count = 200;
    await redis.lpush(key, ...Array.from({ length: count }, (_, n) => JSON.stringify({ n })));
    const seen = new Set<number>();
    for (let i = 0; i < count; i++) seen.add((await client.next()).message.n);
    assert.equal(seen.size, count, 'every item once');
    assert.ok(await client.silentFor(200), 'nothing twice');
    const [ma, mb] = await Promise.all([a, b].map(async (s) => (await statsOf(s.http)).monitors[`redis-list:${key}`].items as number));
    assert.equal(ma + mb, count);
    await client.close();
    await redis.del(key, `${key}:processing`);
  });

  it('SIGTERM stops taking items and publishes the one in hand: none stays in the processing list', async () => {
    const key = `jobs-${unique()}`;
    const server = await spawnServer(['--redis', REDIS_URL, '--redis-list', `${key}=jobs`]);
    servers.push(server);
    await eventually(async () => (await statsOf(server.http)).monitors[`redis-list:${key}`].state === 'watching');
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0);
    await redis.lpush(key, '"after"');
    assert.equal(await redis.llen(key), 1, 'a stopped server takes nothing more');
    assert.equal(await redis.llen(`${key}:processing`), 0);
    await redis.del(key);
  });
});
