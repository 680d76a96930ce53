/** The ws baseline speaks the same protocol subset. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createBaselineServer, type BaselineServer } from '../server/baseline/index.js';
import { TestClient } from './helpers/client.js';

describe('baseline server', () => {
  let server: BaselineServer;
  let base: string;
  before(async () => {
    server = createBaselineServer({ host: '127.0.0.1', port: 0 });
    base = `ws://127.0.0.1:${(await server.listen()).port}`;
  });
  after(() => server.close());

  it('subscribes, publishes, delivers, unsubscribes', async () => {
    const { client: a, welcome } = await TestClient.pubsub(base);
    assert.equal(welcome.event, 'welcome');
    const { client: b } = await TestClient.pubsub(base);
    assert.deepEqual(await a.request({ action: 'subscribe', payload: { channel: 'news' }, id: 1 }), { event: 'subscribed', channel: 'news', id: 1 });
    b.send({ action: 'publish', payload: { channel: 'news', message: { x: 1 } }, id: 2 });
    assert.deepEqual(await b.next(), { event: 'published', channel: 'news', id: 2 });
    assert.deepEqual(await a.next(), { event: 'message', channel: 'news', message: { x: 1 } });
    assert.equal((await a.request({ action: 'unsubscribe', payload: { channel: 'news' } })).event, 'unsubscribed');
    assert.equal((await a.request('nope')).code, 'bad_json');
    assert.deepEqual(await a.request({ action: 'ping', id: 3 }), { event: 'pong', id: 3 });
    await Promise.all([a.close(), b.close()]);
  });

  it('names its /stats counters as the pub/sub server does (snake_case)', async () => {
    const stats = (await (await fetch(`${base.replace('ws:', 'http:')}/stats`)).json()) as Record<string, unknown>;
    for (const key of ['connections', 'messages_in', 'messages_out', 'dropped', 'published', 'pid']) assert.ok(key in stats, `${key} in ${Object.keys(stats).join(', ')}`);
    for (const key of Object.keys(stats)) assert.match(key, /^[a-z0-9_]+$/, `${key} is snake_case`);
  });

  it('runs the echo sequence', async () => {
    const client = await TestClient.open(`${base}/echo?rounds=2`);
    assert.deepEqual(await client.next(), { event: 'welcome' });
    for (const text of ['a', 'b']) {
      client.send(text);
      assert.equal(await client.nextRaw(), text);
    }
    assert.deepEqual(await client.next(), { event: 'goodbye' });
    assert.equal((await client.closed).code, 1000);
  });

  it('refuses other paths', async () => {
    await assert.rejects(TestClient.open(`${base}/x`), /HTTP 404/);
  });
});
