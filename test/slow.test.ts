/**
 * The slow-IO test of realtime-magic, small: three requests sent together on one connection are all
 * answered after about one request's time, on every backend; the serial baseline takes three times it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBaselineServer } from '../server/baseline/index.js';
import type { SlowIoBackend } from '../server/options.js';
import { TestClient } from './helpers/client.js';
import { startServer } from './helpers/server.js';
import { POSTGRES_URL, REDIS_URL, requirePostgres, requireRedis } from './helpers/services.js';

const MS = 600;

/** Sends three slow requests at once; returns each reply's time since sending, in reply order. */
async function threeAtOnce(base: string): Promise<{ id: number; at: number }[]> {
  const { client } = await TestClient.pubsub(base);
  const start = performance.now();
  for (const id of [1, 2, 3]) client.send({ action: 'slow', payload: { ms: MS }, id });
  const replies = [];
  for (let i = 0; i < 3; i++) {
    const reply = await client.next(10_000);
    assert.equal(reply.event, 'slow', JSON.stringify(reply));
    assert.equal(reply.ms, MS);
    replies.push({ id: reply.id as number, at: performance.now() - start });
  }
  await client.close();
  return replies;
}

function assertConcurrent(replies: { id: number; at: number }[]): void {
  assert.deepEqual(replies.map((r) => r.id).sort(), [1, 2, 3]);
  for (const { at } of replies) {
    assert.ok(at >= MS - 5, `answered after ${at.toFixed(0)} ms, before the IO could be done`);
    assert.ok(at < MS * 1.5, `answered after ${at.toFixed(0)} ms: not concurrent`);
  }
}

describe('slow', () => {
  const backends: [SlowIoBackend, (() => Promise<void>) | null, string | null][] = [
    ['timer', null, null],
    ['redis', requireRedis, REDIS_URL],
    ['postgres', requirePostgres, POSTGRES_URL],
  ];
  for (const [backend, requireService, url] of backends) {
    it(`answers three requests together in about one request's time on the ${backend} backend`, async () => {
      await requireService?.();
      const s = await startServer({ slowIo: backend, slowIoUrl: url, slowIoPool: 4 });
      assertConcurrent(await threeAtOnce(s.ws));
      const stats = await s.stats();
      assert.equal(stats.slow.done, 3);
      assert.equal(stats.slow.pending, 0);
      assert.match(stats.slow.backend, new RegExp(`^${backend}`));
      await s.close();
    });
  }

  it('bounds a real-IO backend by its pool: pool 1 answers one after another', async () => {
    await requireRedis();
    const s = await startServer({ slowIo: 'redis', slowIoUrl: REDIS_URL, slowIoPool: 1 });
    const replies = await threeAtOnce(s.ws);
    assert.ok(replies[2]!.at >= MS * 3 - 15, `third answer after ${replies[2]!.at.toFixed(0)} ms`);
    await s.close();
  });

  it('fails to start with a message naming --slow-io-url when the backend is unreachable', async () => {
    await assert.rejects(
      startServer({ slowIo: 'postgres', slowIoUrl: 'postgres://postgres@127.0.0.1:1/test' }),
      /--slow-io postgres: cannot connect to .*--slow-io-url/,
    );
  });

  it('the ws baseline is concurrent by default and serial with --serial', async () => {
    for (const serial of [false, true]) {
      const baseline = createBaselineServer({ host: '127.0.0.1', port: 0, serial });
      const { port } = await baseline.listen();
      const replies = await threeAtOnce(`ws://127.0.0.1:${port}`);
      if (serial) {
        assert.deepEqual(replies.map((r) => r.id), [1, 2, 3]);
        assert.ok(replies[2]!.at >= MS * 3 - 15, `serial third answer after ${replies[2]!.at.toFixed(0)} ms`);
      } else {
        assertConcurrent(replies);
      }
      await baseline.close();
    }
  });
});
