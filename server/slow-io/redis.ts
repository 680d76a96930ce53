/**
 * `slow` over Redis: BLPOP on a key nobody pushes, which blocks its connection for the whole wait, so
 * concurrency is bounded by the pool size (`--slow-io-pool`).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { ConnectionPool } from './pool.js';
import type { SlowIo } from './types.js';
import { redactUrl } from '../log.js';

export async function redisSlowIo(url: string, poolSize: number): Promise<SlowIo> {
  const clients = Array.from({ length: poolSize }, () =>
    new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000, enableOfflineQueue: false }),
  );
  try {
    await Promise.all(clients.map((client) => client.connect()));
  } catch (err) {
    clients.forEach((client) => client.disconnect());
    throw new Error(`--slow-io redis: cannot connect to ${redactUrl(url)} (--slow-io-url): ${(err as Error).message}`);
  }
  const pool = new ConnectionPool(clients);
  // A key of this process that nobody ever pushes to.
  const key = `slow-io:never-pushed:${randomBytes(6).toString('hex')}`;
  return {
    description: `redis BLPOP at ${redactUrl(url)}, pool ${poolSize} (at most ${poolSize} concurrent waits)`,
    wait: (ms) =>
      pool.use(async (client) => {
        await client.blpop(key, ms / 1000);
      }),
    close: async () => {
      clients.forEach((client) => client.disconnect());
    },
  };
}
