/**
 * Secrets are never printed: a password in a URL flag (`--redis`, `--slow-io-url`) stays out of stdout,
 * the log, `/stats`, `/metrics` and the error messages, with a real Redis that requires it and the real
 * PostgreSQL (trust: the password is sent and not needed).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { redactUrl } from '../server/redact.js';
import { spawnServer, type ServerChild } from './helpers/process.js';
import { redisProcess, type RedisProcess } from './helpers/redis-process.js';
import { requirePostgres } from './helpers/services.js';

const CLI = fileURLToPath(new URL('../server/cli.js', import.meta.url));
const PASSWORD = 'never-print-me-7f3a';

/** Everything a server shows of itself: its output so far, /stats and /metrics. */
async function shown(server: ServerChild): Promise<string> {
  const stats = await (await fetch(`${server.http}/stats`)).text();
  const metrics = await (await fetch(`${server.http}/metrics`)).text();
  return `${server.output()}\n${stats}\n${metrics}`;
}

describe('secrets in URLs', () => {
  let redis: RedisProcess;
  before(async () => {
    redis = await redisProcess({ password: PASSWORD });
  });
  after(() => redis.kill());

  it('redactUrl hides a password and leaves a URL without one as given', () => {
    assert.equal(redactUrl(`redis://:${PASSWORD}@127.0.0.1:6379`), 'redis://:***@127.0.0.1:6379');
    assert.equal(redactUrl(`postgres://u:${PASSWORD}@db/test`), 'postgres://u:***@db/test');
    assert.equal(redactUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379');
    assert.equal(redactUrl(`not a url //u:${PASSWORD}@x`), 'not a url //u:***@x');
  });

  it('--redis and --slow-io-url with a password: used, and shown as ***', async () => {
    const server = await spawnServer(['--redis', redis.url, '--slow-io', 'redis', '--slow-io-url', redis.url, '--log-level', 'info']);
    try {
      // Connected with the password: the broker is up and the slow backend answers.
      const health = await fetch(`${server.http}/health`);
      assert.equal(health.status, 200);
      const text = await shown(server);
      assert.ok(!text.includes(PASSWORD), `the password is printed somewhere:\n${text}`);
      assert.match(server.output(), /^broker: redis redis:\/\/:\*\*\*@127\.0\.0\.1:\d+/m);
      assert.match(server.output(), /^slow io: redis BLPOP at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+/m);
      const stats = (await (await fetch(`${server.http}/stats`)).json()) as { slow: { backend: string } };
      assert.match(stats.slow.backend, /redis:\/\/:\*\*\*@/);
    } finally {
      await server.kill();
    }
  });

  it('--slow-io postgres with a password in the URL: shown as ***', async () => {
    await requirePostgres();
    const server = await spawnServer(['--slow-io', 'postgres', '--slow-io-url', `postgres://postgres:${PASSWORD}@127.0.0.1:5432/test`, '--log-level', 'info']);
    try {
      const text = await shown(server);
      assert.ok(!text.includes(PASSWORD), `the password is printed somewhere:\n${text}`);
      assert.match(server.output(), /^slow io: postgres pg_sleep at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:5432\/test/m);
    } finally {
      await server.kill();
    }
  });

  it('a refused flag and an unreachable backend say what is wrong without the password', () => {
    const bad = spawnSync(process.execPath, [CLI, '--redis', `http://u:${PASSWORD}@x`], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--redis must be a redis:\/\/ or rediss:\/\/ URL \(got "http:\/\/u:\*\*\*@x\/?"\)/);
    assert.ok(!`${bad.stdout}${bad.stderr}`.includes(PASSWORD));
    const down = spawnSync(process.execPath, [CLI, '--port', '0', '--host', '127.0.0.1', '--slow-io', 'redis', '--slow-io-url', `redis://:${PASSWORD}@127.0.0.1:1`], { encoding: 'utf8', timeout: 20_000 });
    assert.notEqual(down.status, 0);
    assert.match(down.stderr, /--slow-io redis: cannot connect to redis:\/\/:\*\*\*@127\.0\.0\.1:1/);
    assert.ok(!`${down.stdout}${down.stderr}`.includes(PASSWORD));
  });
});
