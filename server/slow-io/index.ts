/** Picks the `slow` backend chosen at start (`--slow-io`). */
import { DEFAULT_SLOW_IO_URLS, type SlowIoBackend } from '../options.js';
import { postgresSlowIo } from './postgres.js';
import { redisSlowIo } from './redis.js';
import { timerSlowIo } from './timer.js';
import type { SlowIo } from './types.js';

export type { SlowIo } from './types.js';

/** Creates and connects the backend; rejects with a message naming the flag when it cannot connect. */
export async function createSlowIo(backend: SlowIoBackend, url: string | null, poolSize: number): Promise<SlowIo> {
  switch (backend) {
    case 'timer':
      return timerSlowIo();
    case 'redis':
      return redisSlowIo(url ?? DEFAULT_SLOW_IO_URLS.redis, poolSize);
    case 'postgres':
      return postgresSlowIo(url ?? DEFAULT_SLOW_IO_URLS.postgres, poolSize);
  }
}
