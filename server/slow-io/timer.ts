/** The default `slow` backend: a timer. No pool, so no bound on concurrent waits. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SlowIo } from './types.js';

export function timerSlowIo(): SlowIo {
  return {
    description: 'timer (unbounded concurrency)',
    wait: async (ms) => {
      await sleep(ms);
    },
    close: async () => {},
  };
}
