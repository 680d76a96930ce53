/**
 * `slow` over PostgreSQL: `SELECT pg_sleep(s)`, which holds its connection for the whole wait, so
 * concurrency is bounded by the pool size (`--slow-io-pool`), and the pool must stay under the server's
 * `max_connections` (100 by default, shared with everyone else).
 */
import pg from 'pg';
import type { SlowIo } from './types.js';
import { redactUrl } from '../log.js';

export async function postgresSlowIo(url: string, poolSize: number): Promise<SlowIo> {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 3000 });
  // Without a listener an idle client's error (server restart) would crash the process.
  pool.on('error', () => {});
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await pool.end();
    throw new Error(`--slow-io postgres: cannot connect to ${redactUrl(url)} (--slow-io-url): ${(err as Error).message}`);
  }
  return {
    description: `postgres pg_sleep at ${redactUrl(url)}, pool ${poolSize} (at most ${poolSize} concurrent waits)`,
    wait: async (ms) => {
      await pool.query('SELECT pg_sleep($1)', [ms / 1000]);
    },
    close: () => pool.end(),
  };
}
