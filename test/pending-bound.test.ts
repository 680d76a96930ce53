/**
 * The requests of one connection that are taken and not yet answered (behind a slow hook, in a `slow`
 * wait) are bounded in count and bytes: past the bound a request is answered `busy` at once and not
 * taken, the connection goes on, and what was taken is answered in the order sent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PENDING_REQUEST_BYTES } from '../server/endpoints/pubsub.js';
import { TestClient } from './helpers/client.js';
import { startServer } from './helpers/server.js';

/** A gate a hook waits at until the test opens it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

describe('requests in progress, per connection', () => {
  it('behind a slow canPublish: 60 KB publishes past --max-pending-bytes are busy; the rest published in order', async () => {
    const held = gate();
    const s = await startServer({ hooks: { canPublish: async () => (await held.wait, true) } });
    try {
      const { client } = await TestClient.pubsub(s.ws);
      const body = 'x'.repeat(60_000);
      const sent = 100;
      for (let id = 1; id <= sent; id++) client.send({ action: 'publish', payload: { channel: 'news', message: body }, id });
      // Every busy answer comes at once, while the hook still holds the first publish.
      const busy: number[] = [];
      const frameBytes = Buffer.byteLength(JSON.stringify({ action: 'publish', payload: { channel: 'news', message: body }, id: 10 }));
      const taken = Math.floor(1_048_576 / (frameBytes + PENDING_REQUEST_BYTES));
      assert.ok(taken > 10 && taken < 20);
      while (busy.length < sent - taken) {
        const frame = await client.next();
        assert.equal(frame.event, 'error');
        assert.equal(frame.code, 'busy');
        busy.push(frame.id as number);
      }
      assert.deepEqual(busy, Array.from({ length: sent - taken }, (_, i) => taken + 1 + i), 'the later ones are refused, each by its id');
      assert.equal((await s.stats()).errors.busy, sent - taken);
      held.open();
      for (let id = 1; id <= taken; id++) assert.deepEqual(await client.next(), { event: 'published', channel: 'news', id });
      // Once answered they no longer count: the connection takes requests again.
      assert.equal((await client.request({ action: 'ping', id: 'again' })).event, 'pong');
      await client.close();
    } finally {
      await s.close();
    }
  });

  it('counts requests too: past --max-pending-requests small frames are busy, and pongs keep their order', async () => {
    const held = gate();
    const s = await startServer({ maxPendingRequests: 5, hooks: { canPublish: async () => (await held.wait, true) } });
    try {
      const { client } = await TestClient.pubsub(s.ws);
      client.send({ action: 'publish', payload: { channel: 'news', message: 1 }, id: 'p' });
      for (let id = 1; id <= 10; id++) client.send({ action: 'ping', id });
      for (let id = 5; id <= 10; id++) assert.deepEqual(pick(await client.next()), { event: 'error', code: 'busy', id });
      held.open();
      assert.deepEqual(await client.next(), { event: 'published', channel: 'news', id: 'p' });
      for (let id = 1; id <= 4; id++) assert.deepEqual(await client.next(), { event: 'pong', id });
      await client.close();
    } finally {
      await s.close();
    }
  });

  it('bounds the slow waits of one connection, and not another connection\'s', async () => {
    const s = await startServer({ maxPendingRequests: 3 });
    try {
      const { client: a } = await TestClient.pubsub(s.ws);
      const { client: b } = await TestClient.pubsub(s.ws);
      for (let id = 1; id <= 5; id++) a.send({ action: 'slow', payload: { ms: 300 }, id });
      for (let id = 4; id <= 5; id++) assert.deepEqual(pick(await a.next()), { event: 'error', code: 'busy', id });
      assert.equal(s.server.stats.slowPending, 3);
      assert.equal((await b.request({ action: 'slow', payload: { ms: 10 }, id: 'b' })).event, 'slow');
      const done = [(await a.next()).id, (await a.next()).id, (await a.next()).id].sort();
      assert.deepEqual(done, [1, 2, 3]);
      await Promise.all([a.close(), b.close()]);
    } finally {
      await s.close();
    }
  });
});

/** The fields of a frame a test compares. */
function pick(frame: Record<string, unknown>): Record<string, unknown> {
  return { event: frame.event, code: frame.code, id: frame.id };
}
