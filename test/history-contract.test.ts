/**
 * One contract, both history drivers (server/history/types.ts): offsets from 1 within an epoch, the
 * last N kept within the TTL, what a position missed and whether that is all, and a new epoch when the
 * store lost the history. The memory driver keeps what the endpoint hands it; the Redis driver reads
 * what the broker's publish script kept, so there the writer is a Redis broker with history.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createBroker, type Broker } from '../server/broker/index.js';
import { MemoryHistory } from '../server/history/memory.js';
import { NO_LIMITS } from '../server/kept-bounds.js';
import { RedisHistory } from '../server/history/redis.js';
import type { History, Position } from '../server/history/types.js';
import { channelRef, type ChannelRef } from '../server/protocol/index.js';
import { eventually } from './helpers/server.js';
import { REDIS_URL } from './helpers/services.js';

/** A channel as the broker takes it, parsed. */
const ch = (name: string): ChannelRef => channelRef(name)!;

const SIZE = 3;
const TTL_MS = 60_000;

/** One driver under test: its store, how a message gets kept, and how the store loses everything. */
interface Fixture {
  history: History;
  /** Keeps `json` on `channel` as the server would; resolves with its position. */
  write(channel: string, json: string): Promise<Position>;
  /** The store loses every channel's history (a restart of the process, or of Redis, empty). */
  lose(): Promise<void>;
  /** Moves the readers' clock forward. */
  advance(ms: number): void;
  close(): Promise<void>;
}

function memoryFixture(): Fixture {
  let now = Date.now();
  const fixture: Fixture = {
    history: new MemoryHistory(SIZE, TTL_MS, NO_LIMITS, () => now),
    write: async (channel, json) => (fixture.history as MemoryHistory).keep(channel, json),
    lose: async () => void (fixture.history = new MemoryHistory(SIZE, TTL_MS, NO_LIMITS, () => now)),
    advance: (ms) => void (now += ms),
    close: () => fixture.history.close(),
  };
  return fixture;
}

async function redisFixture(): Promise<Fixture> {
  const prefix = `history-contract-${randomBytes(4).toString('hex')}`;
  let now = Date.now();
  const history = new RedisHistory({ url: REDIS_URL, prefix, size: SIZE, ttlMs: TTL_MS, now: () => now });
  const broker: Broker = createBroker({ expire: 0, redis: REDIS_URL, prefix, history: { size: SIZE, ttlMs: TTL_MS } });
  const admin = new Redis(REDIS_URL);
  // Each write waits for its own delivery, which carries the position the script gave it.
  const waiting = new Map<string, (p: Position) => void>();
  broker.onDeliver((channel, json, position) => {
    assert.ok(position, 'a message kept in Redis arrives with its position');
    waiting.get(`${channel}\n${json}`)?.(position);
  });
  const retained = new Set<string>();
  return {
    history,
    async write(channel, json) {
      if (!retained.has(channel)) {
        retained.add(channel);
        broker.retain(ch(channel));
        await broker.subscribed(ch(channel));
      }
      // Until both its connections are up the broker delivers here only, and keeps nothing.
      await eventually(() => broker.state() === 'ready');
      const delivered = new Promise<Position>((resolve) => waiting.set(`${channel}\n${json}`, resolve));
      const given = await broker.publish(ch(channel), json);
      const position = await delivered;
      assert.deepEqual(given, position, "the broker's publish resolves with the position its delivery carries");
      return position;
    },
    async lose() {
      const keys = await admin.keys(`${prefix}:history*`);
      if (keys.length > 0) await admin.del(...keys);
    },
    // The broker's script stamps entries with the real clock: move the readers' clock from there.
    advance: (ms) => void (now = Date.now() + ms),
    async close() {
      const keys = await admin.keys(`${prefix}:*`);
      if (keys.length > 0) await admin.del(...keys);
      await Promise.all([history.close(), broker.close()]);
      admin.disconnect();
    },
  };
}

for (const [name, make] of [['memory', async () => memoryFixture()], ['redis', redisFixture]] as const) {
  describe(`history contract: ${name}`, () => {
    const fixtures: Fixture[] = [];
    const fresh = async (): Promise<Fixture> => {
      const f = await make();
      fixtures.push(f);
      return f;
    };
    after(() => Promise.all(fixtures.map((f) => f.close())));

    it('numbers a channel from 1 in one epoch, keeps the last N, and says what a position missed', async () => {
      const f = await fresh();
      const positions: Position[] = [];
      for (let n = 1; n <= 5; n++) positions.push(await f.write('c', `{"n":${n}}`));
      assert.deepEqual(positions.map((p) => p.offset), [1, 2, 3, 4, 5]);
      const epoch = positions[0].epoch;
      assert.ok(epoch.length > 0 && positions.every((p) => p.epoch === epoch), 'one epoch');
      assert.equal((await f.write('other', '1')).offset, 1, 'each channel counts its own');

      const last = await f.history.last('c', 10);
      assert.deepEqual([last.epoch, last.messages.map((k) => [k.offset, k.messageJson])], [epoch, [[3, '{"n":3}'], [4, '{"n":4}'], [5, '{"n":5}']]]);
      assert.deepEqual((await f.history.last('c', 2)).messages.map((k) => k.offset), [4, 5]);

      const from = (offset: number, e = epoch) => f.history.since('c', { offset, epoch: e });
      const shape = async (offset: number, e?: string) => {
        const missed = await from(offset, e);
        return [missed.recovered, missed.messages.map((k) => k.offset)];
      };
      assert.deepEqual(await shape(2), [true, [3, 4, 5]]);
      assert.deepEqual(await shape(5), [true, []], 'up to date');
      assert.deepEqual(await shape(1), [false, [3, 4, 5]], 'message 2 dropped out');
      assert.deepEqual(await shape(9), [false, []], 'an offset never given');
      assert.deepEqual(await shape(2, 'another'), [false, []], 'another epoch');
      assert.deepEqual((await from(2)).messages.map((k) => k.messageJson), ['{"n":3}', '{"n":4}', '{"n":5}']);
    });

    it('drops messages past the TTL and goes on counting after them', async () => {
      const f = await fresh();
      const first = await f.write('t', '1');
      await f.write('t', '2');
      f.advance(TTL_MS + 1);
      assert.deepEqual((await f.history.last('t', 10)).messages, [], 'all older than the TTL');
      assert.deepEqual(await f.history.since('t', { offset: 1, epoch: first.epoch }), { recovered: false, messages: [] }, 'message 2 expired');
      assert.deepEqual(await f.history.since('t', { offset: 2, epoch: first.epoch }), { recovered: true, messages: [] }, 'nothing after 2 was missed');
      const next = await f.write('t', '3');
      assert.deepEqual(next, { offset: 3, epoch: first.epoch }, 'offsets go on after the TTL dropped everything');
    });

    it('starts a new epoch once the history is lost, so an old position is never taken for a new message', async () => {
      const f = await fresh();
      const before = await f.write('e', '1');
      await f.write('e', '2');
      await f.lose();
      const after = await f.write('e', '3');
      assert.equal(after.offset, 1);
      assert.notEqual(after.epoch, before.epoch);
      assert.deepEqual(await f.history.since('e', { offset: 1, epoch: before.epoch }), { recovered: false, messages: [] });
      assert.deepEqual((await f.history.last('e', 10)).messages.map((k) => k.messageJson), ['3']);
    });
  });
}
