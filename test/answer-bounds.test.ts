/**
 * An answer (a `history`, a recovery replay, a presence list) never cuts the client that asked for it:
 * it takes at most half of --max-backpressure, less what is queued for the client, keeps the newest
 * messages (the first members) that fit, and says what it left out (`truncated`, `recovered: false`).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClient } from './helpers/client.js';
import { startServer } from './helpers/server.js';

const KIB = 1024;

describe('answers are bounded by the client\'s room', () => {
  it('a history of 6 MB answers the newest messages that fit, truncated, and the client stays', async () => {
    const s = await startServer({ history: 100, maxBackpressure: 512 * KIB });
    try {
      const { client } = await TestClient.pubsub(s.ws);
      const body = 'h'.repeat(60_000);
      for (let n = 1; n <= 100; n++) assert.equal((await client.request({ action: 'publish', payload: { channel: 'big', message: { n, body } }, id: n })).event, 'published');
      const answer = await client.request({ action: 'history', payload: { channel: 'big' }, id: 'h' });
      assert.equal(answer.event, 'history');
      assert.equal(answer.truncated, true);
      const offsets = (answer.messages as { offset: number }[]).map((m) => m.offset);
      const fits = Math.floor((512 * KIB) / 2 / 60_050);
      assert.ok(offsets.length >= fits - 1 && offsets.length <= fits, `${offsets.length} messages of 60 KB in half of 512 KiB`);
      assert.deepEqual(offsets, Array.from({ length: offsets.length }, (_, i) => 101 - offsets.length + i), 'the newest, oldest first');
      assert.equal((await client.request({ action: 'ping', id: 'still' })).event, 'pong', 'not cut');
      assert.equal((await s.stats()).slow_consumers, 0);
      const small = await client.request({ action: 'history', payload: { channel: 'big', limit: 2 }, id: 'h2' });
      assert.equal(small.truncated, undefined, 'an answer that fits says nothing more');
      assert.deepEqual((small.messages as { offset: number }[]).map((m) => m.offset), [99, 100]);
      await client.close();
    } finally {
      await s.close();
    }
  });

  it('a recovery larger than an answer replays the newest messages that fit with recovered:false, and the client stays', async () => {
    const s = await startServer({ history: 100, maxBackpressure: 512 * KIB });
    try {
      const { client: publisher } = await TestClient.pubsub(s.ws);
      const body = 'r'.repeat(60_000);
      for (let n = 1; n <= 100; n++) assert.equal((await publisher.request({ action: 'publish', payload: { channel: 'feed', message: { n, body } }, id: n })).event, 'published');
      const { epoch } = (await publisher.request({ action: 'history', payload: { channel: 'feed', limit: 1 }, id: 'e2' })) as { epoch: string };
      assert.match(epoch, /^\S+$/);
      const { client } = await TestClient.pubsub(s.ws);
      client.send({ action: 'subscribe', payload: { channel: 'feed', since: { offset: 0, epoch } }, id: 's' });
      const replayed: number[] = [];
      for (;;) {
        const frame = await client.next();
        if (frame.event === 'subscribed') {
          assert.equal(frame.recovered, false, 'not everything missed was sent');
          break;
        }
        assert.equal(frame.event, 'message');
        replayed.push(frame.offset as number);
      }
      assert.ok(replayed.length > 0 && replayed.length < 100, `${replayed.length} replayed`);
      assert.equal(replayed.at(-1), 100, 'the newest ones');
      publisher.send({ action: 'publish', payload: { channel: 'feed', message: 'live' }, id: 'live' });
      assert.deepEqual({ ...(await client.next()), epoch: undefined }, { event: 'message', channel: 'feed', message: 'live', offset: 101, epoch: undefined });
      assert.equal((await s.stats()).slow_consumers, 0);
      await Promise.all([client.close(), publisher.close()]);
    } finally {
      await s.close();
    }
  });

  it('a presence list larger than an answer lists the members that fit, truncated', async () => {
    const s = await startServer({ presence: true, maxBackpressure: 16 * KIB, maxPayload: 8 * KIB });
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 200; i++) {
        const { client } = await TestClient.pubsub(s.ws);
        assert.equal((await client.request({ action: 'subscribe', payload: { channel: 'crowd' }, id: i })).event, 'subscribed');
        clients.push(client);
      }
      const answer = await clients[0].request({ action: 'presence', payload: { channel: 'crowd' }, id: 'who' });
      assert.equal(answer.event, 'presence');
      assert.equal(answer.truncated, true);
      const size = JSON.stringify(answer.members).length;
      assert.ok(size <= 8 * KIB && (answer.members as unknown[]).length > 10, `${(answer.members as unknown[]).length} members in ${size} bytes`);
      assert.equal((await clients[0].request({ action: 'ping', id: 'still' })).event, 'pong', 'not cut');
      assert.equal((await s.stats()).slow_consumers, 0);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await s.close();
    }
  });
});
