/** `/pubsub` over real sockets: every action, every error code, limits, and no leaks. */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { TestClient } from './helpers/client.js';
import { eventually, startServer, type RunningServer } from './helpers/server.js';

describe('/pubsub', () => {
  let s: RunningServer;
  before(async () => {
    s = await startServer({ maxSubscriptions: 3 });
  });
  after(() => s.close());

  it('welcomes with a connection id, no user and a session', async () => {
    const { client, welcome } = await TestClient.pubsub(s.ws);
    assert.equal(welcome.event, 'welcome');
    assert.equal(typeof welcome.connection, 'string');
    assert.equal(welcome.user, null);
    assert.match(welcome.session as string, /^[A-Za-z0-9_-]{8,}$/);
    await client.close();
  });

  it('subscribes, publishes, delivers to every subscriber and acks with ids', async () => {
    const { client: a } = await TestClient.pubsub(s.ws);
    const { client: b } = await TestClient.pubsub(s.ws);
    assert.deepEqual(await a.request({ action: 'subscribe', payload: { channel: 'news' }, id: 1 }), { event: 'subscribed', channel: 'news', id: 1 });
    assert.deepEqual(await b.request({ action: 'subscribe', payload: { channel: 'news' }, id: 'b' }), { event: 'subscribed', channel: 'news', id: 'b' });
    a.send({ action: 'publish', payload: { channel: 'news', message: { any: 'json', n: [1, 2] } }, id: 3 });
    // The publisher is subscribed too, so it gets its own message and the ack, in either order: the ack
    // goes out when the broker took the message, the copies when the event-loop turn ends (with Redis,
    // when Redis sends them back).
    const own = [await a.next(), await a.next()].sort((x, y) => String(x.event).localeCompare(String(y.event)));
    assert.deepEqual(own, [
      { event: 'message', channel: 'news', message: { any: 'json', n: [1, 2] } },
      { event: 'published', channel: 'news', id: 3 },
    ]);
    assert.deepEqual(await b.next(), { event: 'message', channel: 'news', message: { any: 'json', n: [1, 2] } });
    await Promise.all([a.close(), b.close()]);
  });

  it('sends no published ack when the publish had no id', async () => {
    const { client } = await TestClient.pubsub(s.ws);
    client.send({ action: 'publish', payload: { channel: 'nobody-listens', message: 1 } });
    assert.deepEqual(await client.request({ action: 'ping', id: 'after' }), { event: 'pong', id: 'after' });
    await client.close();
  });

  it('keeps one publisher\'s order on one channel', async () => {
    const { client: pub } = await TestClient.pubsub(s.ws);
    const { client: sub } = await TestClient.pubsub(s.ws);
    await sub.request({ action: 'subscribe', payload: { channel: 'ordered' } });
    for (let i = 0; i < 500; i++) pub.send({ action: 'publish', payload: { channel: 'ordered', message: i } });
    for (let i = 0; i < 500; i++) assert.equal((await sub.next()).message, i);
    await Promise.all([pub.close(), sub.close()]);
  });

  it('unsubscribes: no more messages after the ack', async () => {
    const { client: a } = await TestClient.pubsub(s.ws);
    const { client: pub } = await TestClient.pubsub(s.ws);
    await a.request({ action: 'subscribe', payload: { channel: 'u1' } });
    assert.deepEqual(await a.request({ action: 'unsubscribe', payload: { channel: 'u1' }, id: 2 }), { event: 'unsubscribed', channel: 'u1', id: 2 });
    pub.send({ action: 'publish', payload: { channel: 'u1', message: 'gone' } });
    assert.deepEqual(await a.request({ action: 'ping' }), { event: 'pong' });
    assert.equal(await a.silentFor(100), true);
    // Unsubscribing from a channel one is not on is acked too.
    assert.equal((await a.request({ action: 'unsubscribe', payload: { channel: 'never' } })).event, 'unsubscribed');
    await Promise.all([a.close(), pub.close()]);
  });

  it('answers ping with pong', async () => {
    const { client } = await TestClient.pubsub(s.ws);
    assert.deepEqual(await client.request({ action: 'ping', id: 4 }), { event: 'pong', id: 4 });
    assert.deepEqual(await client.request({ action: 'ping' }), { event: 'pong' });
    await client.close();
  });

  it('answers every bad frame with a coded error and keeps the connection and its subscriptions', async () => {
    const { client } = await TestClient.pubsub(s.ws);
    const { client: pub } = await TestClient.pubsub(s.ws);
    await client.request({ action: 'subscribe', payload: { channel: 'kept' } });
    const cases: [unknown, string, unknown][] = [
      ['{not json', 'bad_json', null],
      ['[1,2,3]', 'bad_json', null],
      [{ action: 'subscribe', id: 7 }, 'bad_request', 7],
      [{ action: 'slow', payload: { ms: -1 }, id: 8 }, 'bad_request', 8],
      [{ action: 'fly', id: 9 }, 'unknown_action', 9],
      [{ action: 'subscribe', payload: { channel: 'no spaces' }, id: 10 }, 'bad_channel', 10],
      [{ action: 'subscribe', payload: { channel: 'user:john:chat' }, id: 11 }, 'forbidden', 11],
      [{ action: 'subscribe', payload: { channel: 'session:someone-else:chat' }, id: 12 }, 'forbidden', 12],
      [{ action: 'publish', payload: { channel: 'user:john:chat', message: 1 }, id: 13 }, 'forbidden', 13],
    ];
    for (const [frame, code, id] of cases) {
      const reply = await client.request(frame);
      assert.equal(reply.event, 'error', JSON.stringify(frame));
      assert.equal(reply.code, code, JSON.stringify(frame));
      assert.equal(reply.id, id);
      assert.equal(typeof reply.message, 'string');
    }
    client.ws.send(Buffer.from([1, 2, 3]));
    assert.equal((await client.next()).code, 'binary_not_supported');
    pub.send({ action: 'publish', payload: { channel: 'kept', message: 'still here' } });
    assert.deepEqual(await client.next(), { event: 'message', channel: 'kept', message: 'still here' });
    const stats = await s.stats();
    for (const code of ['bad_json', 'bad_request', 'unknown_action', 'bad_channel', 'forbidden', 'binary_not_supported']) {
      assert.ok(stats.errors[code] >= 1, code);
    }
    await Promise.all([client.close(), pub.close()]);
  });

  it('lets a connection use its own session channels, which only the server side publishes', async () => {
    const { client, welcome } = await TestClient.pubsub(s.ws);
    const mine = `session:${welcome.session}:inbox`;
    assert.equal((await client.request({ action: 'subscribe', payload: { channel: mine } })).event, 'subscribed');
    assert.equal((await client.request({ action: 'publish', payload: { channel: mine, message: 1 } })).code, 'forbidden');
    await client.close();
  });

  it('refuses subscriptions past --max-subscriptions, and a repeated subscribe costs nothing', async () => {
    const { client } = await TestClient.pubsub(s.ws);
    for (const channel of ['m1', 'm2', 'm3', 'm3']) {
      assert.equal((await client.request({ action: 'subscribe', payload: { channel } })).event, 'subscribed');
    }
    const refused = await client.request({ action: 'subscribe', payload: { channel: 'm4' }, id: 'x' });
    assert.equal(refused.code, 'too_many_subscriptions');
    assert.equal(refused.id, 'x');
    await client.request({ action: 'unsubscribe', payload: { channel: 'm1' } });
    assert.equal((await client.request({ action: 'subscribe', payload: { channel: 'm4' } })).event, 'subscribed');
    await client.close();
  });

  it('closes a frame over --max-payload with 1009 and counts it', async () => {
    const { client } = await TestClient.pubsub(s.ws);
    client.send(JSON.stringify({ action: 'publish', payload: { channel: 'big', message: 'x'.repeat(70_000) } }));
    assert.equal((await client.closed).code, 1009);
    await eventually(async () => (await s.stats()).too_large >= 1);
  });

  it('leaves no connection, subscription or channel behind after disconnects', async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => TestClient.pubsub(s.ws)));
    for (const [i, { client }] of clients.entries()) {
      await client.request({ action: 'subscribe', payload: { channel: `leak-${i % 4}` } });
      await client.request({ action: 'subscribe', payload: { channel: 'leak-all' } });
    }
    const during = await s.stats();
    assert.ok(during.subscriptions >= 40);
    // Half close cleanly, half vanish without a close frame.
    await Promise.all(clients.map(({ client }, i) => (i % 2 ? client.close() : (client.ws.terminate(), client.closed))));
    await eventually(async () => {
      const stats = await s.stats();
      return stats.connections === 0 && stats.subscriptions === 0 && stats.channels === 0;
    });
  });
});

describe('/pubsub limits', () => {
  it('answers frames past --rate-limit with rate_limited, and keeps the connection', async () => {
    const s = await startServer({ rateLimit: 5 });
    const { client } = await TestClient.pubsub(s.ws);
    for (let i = 0; i < 8; i++) client.send({ action: 'ping', id: i });
    const replies = await Promise.all(Array.from({ length: 8 }, () => client.next()));
    assert.deepEqual(replies.slice(0, 5).map((r) => r.event), ['pong', 'pong', 'pong', 'pong', 'pong']);
    assert.deepEqual(replies.slice(5).map((r) => [r.code, r.id]), [['rate_limited', 5], ['rate_limited', 6], ['rate_limited', 7]]);
    assert.equal((await s.stats()).errors.rate_limited, 3);
    await client.close();
    await s.close();
  });

  it('refuses client publishes with --no-client-publish', async () => {
    const s = await startServer({ clientPublish: false });
    const { client } = await TestClient.pubsub(s.ws);
    const reply = await client.request({ action: 'publish', payload: { channel: 'news', message: 1 }, id: 1 });
    assert.equal(reply.code, 'forbidden');
    assert.match(reply.message, /--no-client-publish/);
    await client.close();
    await s.close();
  });

  it('closes a slow consumer with goodbye and 1008 past --max-backpressure, and counts it', async () => {
    const s = await startServer({ maxBackpressure: 256 * 1024 });
    const { client: slow } = await TestClient.pubsub(s.ws);
    const { client: fast } = await TestClient.pubsub(s.ws);
    await slow.request({ action: 'subscribe', payload: { channel: 'firehose' } });
    await fast.request({ action: 'subscribe', payload: { channel: 'firehose' } });
    // The slow one stops reading from its socket.
    (slow.ws as unknown as { _socket: net.Socket })._socket.pause();
    const message = 'y'.repeat(4000);
    // Bursts of 40 KB, well under the limit, so the server sees the queue pass the limit before it
    // reaches uWS's hard cap (twice the limit) and the goodbye still fits.
    for (let i = 0; i < 4000; i += 10) {
      for (let k = 0; k < 10; k++) fast.send({ action: 'publish', payload: { channel: 'firehose', message } });
      for (let k = 0; k < 10; k++) await fast.next();
      if (i % 100 === 0 && (await s.stats()).slow_consumers > 0) break;
    }
    await eventually(async () => (await s.stats()).slow_consumers === 1, 5000);
    (slow.ws as unknown as { _socket: net.Socket })._socket.resume();
    let last: Record<string, any> = {};
    for (;;) {
      const frame = await slow.next(5000);
      if (frame.event !== 'message') {
        last = frame;
        break;
      }
    }
    assert.deepEqual(last, { event: 'goodbye', reason: 'slow_consumer' });
    assert.equal((await slow.closed).code, 1008);
    // The fast consumer is untouched.
    assert.equal((await fast.request({ action: 'ping' })).event, 'pong');
    await fast.close();
    await s.close();
  });

  it('keeps a silent client alive with pings and closes a dead one after --idle-timeout', { timeout: 30_000 }, async () => {
    const s = await startServer({ idleTimeout: 8 });
    const { client: alive } = await TestClient.pubsub(s.ws);
    // A raw TCP peer that completes the handshake and then never answers anything.
    const dead = net.connect(s.port, '127.0.0.1');
    dead.write(`GET /pubsub HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    const deadClosed = new Promise<number>((resolve) => {
      const started = Date.now();
      dead.on('close', () => resolve(Date.now() - started));
      dead.on('data', () => {});
    });
    const ms = await deadClosed;
    // uWS checks timeouts every 4 s, so an 8 s timeout fires between 4 and 12 s of silence.
    assert.ok(ms >= 4000 && ms < 20_000, `dead peer closed after ${ms} ms`);
    assert.equal(alive.ws.readyState, alive.ws.OPEN);
    assert.equal((await alive.request({ action: 'ping' })).event, 'pong');
    await alive.close();
    await s.close();
  });
});
