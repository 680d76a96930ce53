/**
 * What the server keeps for channels that anonymous clients name is bounded: the history in this
 * process expires by its TTL whether or not anyone reads the channel and forgets channels left empty,
 * the history and the --expire cache keep at most --max-kept-channels channels and --max-kept-bytes
 * bytes (the channel published to least recently goes first; it comes back in a new epoch), and in
 * Redis every name sits under a prefix by default and a channel's history meta lives as long as its TTL.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { TestClient } from './helpers/client.js';
import { eventually, startServer, type RunningServer } from './helpers/server.js';
import { REDIS_URL, requireRedis } from './helpers/services.js';

/** Publishes `count` messages on channels `<prefix>0`, `<prefix>1`, ..., each acked. */
async function flood(client: TestClient, prefix: string, count: number, message: unknown = 1): Promise<void> {
  const window = 50;
  for (let start = 0; start < count; start += window) {
    const ids = Array.from({ length: Math.min(window, count - start) }, (_, i) => start + i);
    for (const n of ids) client.send({ action: 'publish', payload: { channel: `${prefix}${n}`, message }, id: n });
    for (const n of ids) assert.deepEqual(await client.next(), { event: 'published', channel: `${prefix}${n}`, id: n });
  }
}

const historyOf = async (s: RunningServer) => (await s.stats()).history as { channels: number; bytes: number; expired: number; evicted: number };

describe('what is kept for channels is bounded', () => {
  it('the history expires by its TTL with no reader, and forgets the channels left empty', async () => {
    const s = await startServer({ history: 10, historyTtl: 1 });
    try {
      const { client } = await TestClient.pubsub(s.ws);
      await flood(client, 'ttl', 200);
      const full = await historyOf(s);
      assert.equal(full.channels, 200);
      assert.ok(full.bytes > 200 * 64, `${full.bytes} bytes`);
      await eventually(async () => (await historyOf(s)).channels === 0, 4000);
      const after = await historyOf(s);
      assert.deepEqual({ channels: after.channels, bytes: after.bytes, expired: after.expired }, { channels: 0, bytes: 0, expired: 200 });
      await client.close();
    } finally {
      await s.close();
    }
  });

  it('keeps at most --max-kept-channels: the least recently published go, and come back in a new epoch', async () => {
    const s = await startServer({ history: 10, maxKeptChannels: 50 });
    try {
      const { client } = await TestClient.pubsub(s.ws);
      client.send({ action: 'publish', payload: { channel: 'lru0', message: 'first' }, id: 'first' });
      await client.next();
      const before = await client.request({ action: 'history', payload: { channel: 'lru0' }, id: 'h0' });
      await flood(client, 'lru', 200);
      const counters = await historyOf(s);
      assert.equal(counters.channels, 50);
      assert.equal(counters.evicted, 150);
      const gone = await client.request({ action: 'history', payload: { channel: 'lru10' }, id: 'h1' });
      assert.deepEqual([gone.messages, gone.epoch], [[], '']);
      const kept = await client.request({ action: 'history', payload: { channel: 'lru199' }, id: 'h2' });
      assert.equal(kept.messages.length, 1);
      // lru0 was dropped and published to again: a client that saw its first epoch cannot recover.
      client.send({ action: 'subscribe', payload: { channel: 'lru0', since: { offset: 1, epoch: before.epoch } }, id: 's' });
      assert.deepEqual(await client.next(), { event: 'subscribed', channel: 'lru0', recovered: false, id: 's' });
      const again = await client.request({ action: 'history', payload: { channel: 'lru0' }, id: 'h3' });
      assert.notEqual(again.epoch, before.epoch);
      await client.close();
    } finally {
      await s.close();
    }
  });

  it('keeps at most --max-kept-bytes of messages', async () => {
    const s = await startServer({ history: 10, maxKeptBytes: 1024 * 1024 });
    try {
      const { client } = await TestClient.pubsub(s.ws);
      await flood(client, 'big', 60, 'b'.repeat(60_000));
      const counters = await historyOf(s);
      assert.ok(counters.bytes <= 1024 * 1024, `${counters.bytes} bytes kept`);
      assert.ok(counters.channels >= 15 && counters.channels <= 17, `${counters.channels} channels`);
      assert.equal(counters.evicted, 60 - counters.channels);
      await client.close();
    } finally {
      await s.close();
    }
  });

  it('the --expire cache: swept without a reader, and bounded like the history', async () => {
    const s = await startServer({ expire: 1, maxKeptChannels: 30 });
    try {
      const { client } = await TestClient.pubsub(s.ws);
      await flood(client, 'cache', 100);
      const broker = (await s.stats()).broker as Record<string, number>;
      assert.deepEqual([broker.cache_channels, broker.cache_evicted], [30, 70]);
      await eventually(async () => ((await s.stats()).broker as Record<string, number>).cache_channels === 0, 4000);
      assert.equal(((await s.stats()).broker as Record<string, number>).cache_bytes, 0);
      await client.close();
    } finally {
      await s.close();
    }
  });

  it('make bench-floods, short: the bounds hold and it says so, side by side with the CSV', async () => {
    const out = mkdtempSync(join(tmpdir(), 'floods-'));
    try {
      const { stdout } = await promisify(execFile)(process.execPath, [fileURLToPath(new URL('../bench/floods.js', import.meta.url)), '--big', '200', '--small', '12000', '--out', out], { timeout: 60_000 });
      assert.match(stdout, /^target PASS {2}after the big flood/m);
      assert.match(stdout, /^target PASS {2}after the TTL the history \(and a cache of no longer --expire\) keeps nothing: history 0 channels, 0 bytes; cache 0 channels$/m);
      assert.match(stdout, /^target PASS {2}after the small flood at most --max-kept-channels channels are kept: 10000$/m);
      const csv = readFileSync(join(out, readdirSync(out).find((f) => f.startsWith('floods-'))!), 'utf8').trim().split('\n');
      assert.equal(csv.length, 5, 'a header and a row per step');
      assert.match(csv[0], /^server,step,heap_used_mib,rss_mib,history_channels,history_bytes,cache_channels,.*host_reference_ms/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('in Redis: every name under the default prefix, and a history meta that lives as long as its TTL', async () => {
    await requireRedis();
    const channel = `p${randomBytes(4).toString('hex')}`;
    const s = await startServer({ redis: REDIS_URL, history: 5, historyTtl: 30, expire: 30 });
    const redis = new Redis(REDIS_URL);
    try {
      assert.equal(s.server.options.prefix, 'pubsub');
      await eventually(async () => (await fetch(`${s.http}/health`)).status === 200, 10_000);
      const { client } = await TestClient.pubsub(s.ws);
      assert.equal((await client.request({ action: 'publish', payload: { channel, message: 1 }, id: 1 })).event, 'published');
      const keys = (await redis.keys(`*${channel}*`)).sort();
      assert.ok(keys.length >= 3 && keys.every((key) => key.startsWith('pubsub:')), keys.join(' '));
      const meta = keys.find((key) => key.includes('history-meta'))!;
      const ttl = await redis.ttl(meta);
      assert.ok(ttl > 0 && ttl <= 30, `meta TTL ${ttl} s`);
      await client.close();
      await redis.del(...keys);
    } finally {
      redis.disconnect();
      await s.close();
    }
  });
});
