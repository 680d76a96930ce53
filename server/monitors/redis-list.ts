/**
 * The Redis list monitor: items pushed with `LPUSH key` are published on a channel, oldest first.
 *
 * Guarantees:
 * - At least once: each item is moved atomically (BLMOVE) from `key` to the processing list
 *   `key:processing`, published through the broker (to every instance), and only then removed from
 *   the processing list. A server that dies between the move and the removal leaves the item there;
 *   the next start of a monitor on the same key publishes what it finds there first. So a restart
 *   loses nothing, and may publish an item twice (the one in flight when the process died).
 * - Several instances may watch one key: each item is moved by exactly one of them (Redis runs BLMOVE
 *   atomically) and published once through the broker. One caveat: an instance that starts while
 *   another has an item in flight publishes that item too (at least once, not exactly once).
 * - Order: one instance publishes in push order; several instances interleave.
 * - Redis unreachable: the monitor waits and retries (ioredis reconnects), counting `redis_errors`;
 *   nothing leaves the list while it cannot be published. An item is published only once the broker
 *   reaches every instance (MonitorSink.bridged): one taken while the broker connects waits in
 *   key:processing. `stop` waits for the item in hand.
 * - An item that is not JSON is published as a JSON string.
 */
import { Redis } from 'ioredis';
import { redactUrl, type Logger } from '../log.js';
import { parseChannel } from '../protocol/channels.js';
import { messageJsonOf, type Monitor, type MonitorSink } from './types.js';

export interface RedisListOptions {
  /** `redis://...` */
  url: string;
  /** The list clients push to. */
  key: string;
  /** The pub/sub channel its items are published on. */
  channel: string;
}

/** Seconds one BLMOVE waits for an item: how long `stop` may wait for the loop to notice. */
const BLOCK_S = 0.5;
const RETRY_MS = 250;

/** @throws RangeError when the key is empty or the channel name is invalid. */
export function redisList(options: RedisListOptions): Monitor {
  const { key, channel } = options;
  if (!key) throw new RangeError('redisList: key must not be empty');
  if (!parseChannel(channel)) throw new RangeError(`redisList: ${JSON.stringify(channel)} is not a valid pub/sub channel name`);
  const processing = `${key}:processing`;
  const name = `redis-list:${key}`;
  const where = redactUrl(options.url);
  const counters = { items: 0, recovered: 0, redis_errors: 0 };
  let state = 'stopped';
  let redis: Redis | null = null;
  let stopped = false;
  let loop: Promise<void> = Promise.resolve();

  /** Publishes once the broker reaches every instance; a server that stops first leaves the item in key:processing. */
  async function publishItem(sink: MonitorSink, item: string): Promise<void> {
    if (!(await sink.bridged())) return;
    await sink.publish(channel, messageJsonOf(item));
    await redis!.lrem(processing, 1, item);
  }

  async function run(sink: MonitorSink, log: Logger): Promise<void> {
    while (!stopped) {
      try {
        const item = await redis!.blmove(key, processing, 'RIGHT', 'LEFT', BLOCK_S);
        state = 'watching';
        if (item === null) continue;
        counters.items++;
        await publishItem(sink, item);
      } catch (err) {
        if (stopped) break;
        counters.redis_errors++;
        if (state !== 'reconnecting') log.warn({ monitor: name, url: where, err: (err as Error).message }, 'monitor: Redis failed; retrying');
        state = 'reconnecting';
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  }

  return {
    name,
    async start(sink, log) {
      stopped = false;
      // A connection of its own: BLMOVE blocks it. Commands wait while it reconnects (offline queue).
      redis = new Redis(options.url, { lazyConnect: true, maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(n * 100, 2000) });
      redis.on('error', () => {}); // counted where a command fails
      try {
        await redis.connect();
        // What an earlier run moved but did not get to remove: published first, oldest first.
        const left = await redis.lrange(processing, 0, -1);
        for (const item of left.reverse()) {
          counters.recovered++;
          await publishItem(sink, item);
        }
      } catch (err) {
        redis.disconnect();
        redis = null;
        throw new Error(`redis-list: cannot watch ${key} at ${where}: ${(err as Error).message}`);
      }
      if (counters.recovered > 0) log.warn({ monitor: name, recovered: counters.recovered }, 'monitor: published items an earlier run had taken but not confirmed');
      state = 'watching';
      log.info({ monitor: name, url: where, channel }, 'monitor: watching list');
      loop = run(sink, log);
    },
    async stop() {
      stopped = true;
      // The loop notices within one BLMOVE; while Redis is away its command waits for a reconnect, so
      // past that the connection is dropped, which fails the command and ends the loop.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([loop, new Promise((resolve) => (timer = setTimeout(resolve, BLOCK_S * 1000 + 1500)))]);
      clearTimeout(timer);
      redis?.disconnect();
      await loop;
      state = 'stopped';
      redis = null;
    },
    state: () => state,
    counters: () => ({ ...counters }),
  };
}
