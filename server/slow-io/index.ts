/** Picks the `slow` backend chosen at start (`--slow-io`). */
import { DEFAULT_SLOW_IO_URLS, type SlowIoBackend } from '../options.js';
import { postgresSlowIo } from './postgres.js';
import { redisSlowIo } from './redis.js';
import { timerSlowIo } from './timer.js';
import type { SlowIo } from './types.js';

export type { SlowIo } from './types.js';

/**
 * Creates and connects the backend, or null when the `slow` action is off; rejects with a message naming
 * the flag when it cannot connect.
 */
export async function createSlowIo(backend: SlowIoBackend, url: string | null, poolSize: number): Promise<SlowIo | null> {
  switch (backend) {
    case 'off':
      return null;
    case 'timer':
      return timerSlowIo();
    case 'redis':
      return redisSlowIo(url ?? DEFAULT_SLOW_IO_URLS.redis, poolSize);
    case 'postgres':
      return postgresSlowIo(url ?? DEFAULT_SLOW_IO_URLS.postgres, poolSize);
  }
}
