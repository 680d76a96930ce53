/**
 * History and recovery in one process (--history): offsets and an epoch on every message, the history
 * action, and a subscribe with `since` that replays what was missed, then goes live with nothing missed
 * and nothing twice, also while messages keep coming; recovered:false when it cannot.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryHistory } from '../server/history/memory.js';
import { TestClient } from './helpers/client.js';
import { startServer } from './helpers/server.js';

describe('MemoryHistory', () => {
  it('keeps the last N within the TTL, and says what a position missed and whether that is all', () => {
    const h = new MemoryHistory(3, 1000);
    for (let n = 1; n <= 5; n++) assert.deepEqual(h.append('c', String(n), 0), { offset: n, epoch: h.epoch });
    assert.deepEqual(h.last('c', 10, 0).map((k) => k.offset), [3, 4, 5]);
    assert.deepEqual(h.last('c', 2, 0).map((k) => k.offset), [4, 5]);
    const from = (offset: number, epoch = h.epoch) => h.since('c', { offset, epoch }, 0);
    assert.deepEqual([from(2).recovered, from(2).messages.map((k) => k.offset)], [true, [3, 4, 5]]);
    assert.deepEqual([from(5).recovered, from(5).messages.length], [true, 0], 'up to date');
    assert.deepEqual([from(1).recovered, from(1).messages.map((k) => k.offset)], [false, [3, 4, 5]], 'message 2 dropped out');
    assert.deepEqual([from(9).recovered, from(9).messages.length], [false, 0], 'an offset never given');
    assert.deepEqual([from(2, 'another').recovered, from(2, 'another').messages.length], [false, 0], 'another epoch');
    assert.deepEqual(h.since('fresh', { offset: 0, epoch: h.epoch }, 0), { recovered: true, messages: [] });
    assert.deepEqual(h.last('c', 10, 1000), [], 'all older than the TTL');
    assert.equal(h.append('c', '6', 1000).offset, 6, 'offsets go on after the TTL dropped everything');
  });
});

async function subscriber(base: string, channel: string, since?: { offset: number; epoch: string }): Promise<{ client: TestClient; replayed: Record<string, any>[]; ack: Record<string, any> }> {
  const { client } = await TestClient.pubsub(base);
  client.send({ action: 'subscribe', payload: { channel, ...(since ? { since } : {}) }, id: 's' });
  const replayed: Record<string, any>[] = [];
  for (;;) {
    const frame = await client.next();
    if (frame.event === 'subscribed') return { client, replayed, ack: frame };
    replayed.push(frame);
  }
}

describe('history and recovery (--history)', () => {
  it('numbers messages, answers history, and recovers a reconnecting subscriber exactly', async () => {
    const server = await startServer({ history: 5 });
    try {
      const { client: pub } = await TestClient.pubsub(server.ws);
      const publish = async (n: number) => assert.equal((await pub.request({ action: 'publish', payload: { channel: 'news', message: { n } }, id: n })).event, 'published');
      for (let n = 1; n <= 3; n++) await publish(n); // nobody listens: kept all the same
      const a = await subscriber(server.ws, 'news');
      assert.equal(a.ack.recovered, undefined, 'a plain subscribe says nothing of recovery');
      await publish(4);
      const four = await a.client.next();
      assert.deepEqual([four.message, four.offset, typeof four.epoch], [{ n: 4 }, 4, 'string']);
      const epoch = four.epoch as string;

      const history = await a.client.request({ action: 'history', payload: { channel: 'news', limit: 10 }, id: 'h' });
      assert.deepEqual(history, { event: 'history', channel: 'news', messages: [1, 2, 3, 4].map((n) => ({ offset: n, message: { n } })), epoch, id: 'h' });
      assert.deepEqual((await a.client.request({ action: 'history', payload: { channel: 'news', limit: 2 }, id: 2 })).messages.map((m: { offset: number }) => m.offset), [3, 4]);

      await a.client.close();
      for (let n = 5; n <= 6; n++) await publish(n);
      const back = await subscriber(server.ws, 'news', { offset: 4, epoch });
      assert.deepEqual(back.replayed.map((m) => [m.offset, m.message.n]), [[5, 5], [6, 6]]);
      assert.deepEqual(back.ack, { event: 'subscribed', channel: 'news', recovered: true, id: 's' });
      await publish(7);
      assert.deepEqual([(await back.client.next()).offset], [7]);
      assert.ok(await back.client.silentFor(100), 'nothing twice');

      // Too far back (5 kept: 3..7) and another epoch: recovered false.
      const late = await subscriber(server.ws, 'news', { offset: 1, epoch });
      assert.deepEqual([late.ack.recovered, late.replayed.map((m) => m.offset)], [false, [3, 4, 5, 6, 7]]);
      const other = await subscriber(server.ws, 'news', { offset: 4, epoch: 'not-this-one' });
      assert.deepEqual([other.ack.recovered, other.replayed.length], [false, 0]);
      await Promise.all([pub.close(), back.client.close(), late.client.close(), other.client.close()]);
    } finally {
      await server.close();
    }
  });

  it('while messages keep coming, every reconnect with since continues the sequence with nothing missed and nothing twice', async () => {
    const server = await startServer({ history: 1000 });
    try {
      const { client: pub } = await TestClient.pubsub(server.ws);
      let n = 0;
      const timer = setInterval(() => {
        for (let i = 0; i < 5; i++) pub.send({ action: 'publish', payload: { channel: 'live', message: ++n } });
      }, 2);
      try {
        let { client, replayed } = await subscriber(server.ws, 'live');
        let seen: number[] = replayed.map((m) => m.offset);
        let epoch = '';
        for (let round = 0; round < 20; round++) {
          // Read a few live messages, drop the connection, come back from the last offset seen.
          for (let i = 0; i < 10 + round; i++) {
            const frame = await client.next();
            seen.push(frame.offset);
            epoch = frame.epoch;
          }
          await client.close();
          const back = await subscriber(server.ws, 'live', { offset: seen.at(-1)!, epoch });
          assert.equal(back.ack.recovered, true, `round ${round}`);
          seen = seen.concat(back.replayed.map((m) => m.offset));
          client = back.client;
        }
        for (let i = 0; i < 10; i++) seen.push((await client.next()).offset);
        await client.close();
        const first = seen[0];
        assert.deepEqual(seen, seen.map((_, i) => first + i), 'consecutive offsets: nothing missed, nothing twice');
      } finally {
        clearInterval(timer);
      }
      await pub.close();
    } finally {
      await server.close();
    }
  });

  it('without --history: no offsets, history is refused, since gets recovered:false', async () => {
    const server = await startServer();
    try {
      const s = await subscriber(server.ws, 'news', { offset: 3, epoch: 'x' });
      assert.equal(s.ack.recovered, false);
      const refused = await s.client.request({ action: 'history', payload: { channel: 'news' }, id: 1 });
      assert.deepEqual([refused.event, refused.code], ['error', 'bad_request']);
      const bad = await s.client.request({ action: 'subscribe', payload: { channel: 'news', since: { offset: -1, epoch: 'x' } }, id: 2 });
      assert.deepEqual([bad.event, bad.code], ['error', 'bad_request']);
      await s.client.close();
    } finally {
      await server.close();
    }
  });
});
