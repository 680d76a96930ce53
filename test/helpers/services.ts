/**
 * The real services some tests need. A missing one fails the test with a message that names it and
 * says how to get it; it never skips.
 */
import net from 'node:net';
import { after, before } from 'node:test';
import pg from 'pg';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** The Python the tests drive the server from (Debian's python3 with python3-websockets). */
export const PYTHON = process.env.TEST_PYTHON ?? '/usr/bin/python3.11';

function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** Throws unless Redis answers at REDIS_URL. */
export async function requireRedis(): Promise<void> {
  if (!(await reachable(REDIS_URL))) {
    throw new Error(
      `Redis is required by this test and is not reachable at ${REDIS_URL}. ` +
        'Install Debian\'s redis-server (apt-get install redis-server) and start it, or set TEST_REDIS_URL.',
    );
  }
}

/** Throws unless PostgreSQL answers at POSTGRES_URL. */
export async function requirePostgres(): Promise<void> {
  if (!(await reachable(POSTGRES_URL))) {
    throw new Error(
      `PostgreSQL is required by this test and is not reachable at ${POSTGRES_URL}. ` +
        'Install Debian\'s postgresql (apt-get install postgresql), allow trust auth for 127.0.0.1 and create database test, or set TEST_POSTGRES_URL.',
    );
  }
}

/**
 * A PostgreSQL client for the suite it is called in: connected before its tests (failing, with how to
 * get PostgreSQL, when there is none), ended after them.
 */
export function postgresForSuite(): pg.Client {
  const db = new pg.Client({ connectionString: POSTGRES_URL });
  before(async () => {
    await requirePostgres();
    await db.connect();
  });
  after(() => db.end());
  return db;
}

/** Deletes every key under `<prefix>:` in the shared Redis (what a test's servers kept there). */
export async function dropRedisKeys(prefix: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(REDIS_URL);
  try {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}
