/**
 * A server started with no flags is one that may face the open internet: the benchmark surfaces (/echo,
 * the slow action, /stats and /metrics on the public port) are off, a connection's frames are limited to
 * 1,000 a second, and the counters are served on a loopback admin listener when one is asked for. The
 * benchmarks turn the surfaces on and the limit off with --bench.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_OPTIONS } from '../server/index.js';
import { BENCH_SURFACES } from '../server/options.js';
import { TestClient } from './helpers/client.js';
import { spawnServer } from './helpers/process.js';
import { startServer } from './helpers/server.js';

/** The defaults of the surfaces the test helper turns on for every other test. */
const DEFAULTS = Object.fromEntries(Object.keys(BENCH_SURFACES).map((name) => [name, DEFAULT_OPTIONS[name as keyof typeof BENCH_SURFACES]]));

describe('the defaults keep benchmark surfaces off', () => {
  it('answers 404 for /stats, /metrics and /echo, and disabled for the slow action', async () => {
    const s = await startServer({ ...DEFAULTS });
    try {
      for (const path of ['/stats', '/metrics']) {
        const res = await fetch(`${s.http}${path}`);
        assert.equal(res.status, 404, path);
        assert.match(((await res.json()) as { message: string }).message, /admin listener \(--admin-port\)/);
      }
      assert.equal((await fetch(`${s.http}/health`)).status, 200);
      await assert.rejects(TestClient.open(`${s.ws}/echo`), /HTTP 404/);
      const echoGet = await fetch(`${s.http}/echo`);
      assert.equal(echoGet.status, 404);
      assert.match(((await echoGet.json()) as { message: string }).message, /--echo/);
      const { client } = await TestClient.pubsub(s.ws);
      const answer = await client.request({ action: 'slow', payload: { ms: 50 }, id: 7 });
      assert.deepEqual({ event: answer.event, code: answer.code, id: answer.id }, { event: 'error', code: 'disabled', id: 7 });
      assert.equal(s.server.stats.slowPending, 0, 'no wait was started');
      await client.close();
    } finally {
      await s.close();
    }
  });

  it('limits each connection to 1,000 frames a second', async () => {
    const s = await startServer({ ...DEFAULTS });
    try {
      const { client } = await TestClient.pubsub(s.ws);
      // 2,100 frames sent at once fall in at most two one-second windows, so one of them holds 1,050.
      const sent = 2100;
      for (let id = 0; id < sent; id++) client.send({ action: 'ping', id });
      const replies = await Promise.all(Array.from({ length: sent }, () => client.next()));
      const pongs = replies.filter((r) => r.event === 'pong').length;
      const limited = replies.filter((r) => r.code === 'rate_limited').length;
      assert.equal(pongs + limited, sent);
      assert.ok(limited >= 50 && pongs >= 1000 && pongs <= 2000, `pongs ${pongs}, rate_limited ${limited}`);
      await client.close();
    } finally {
      await s.close();
    }
  });

  it('serves the counters on the admin listener, on loopback, and nothing else there', async () => {
    const s = await startServer({ ...DEFAULTS, adminPort: 0 });
    try {
      assert.notEqual(s.adminPort, null);
      const admin = `http://127.0.0.1:${s.adminPort}`;
      const stats = (await (await fetch(`${admin}/stats`)).json()) as { connections: number };
      assert.equal(typeof stats.connections, 'number');
      const metrics = await fetch(`${admin}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /^# HELP /m);
      assert.equal((await fetch(`${admin}/health`)).status, 200);
      assert.equal((await fetch(`${admin}/publish`, { method: 'POST', body: '{}' })).status, 404);
      assert.equal((await fetch(`${admin}/client.js`)).status, 404);
      assert.equal((await fetch(`${s.http}/stats`)).status, 404, 'not on the public port');
    } finally {
      await s.close();
    }
  });

  it('the command line prints the admin URL, lists only what is served, and --bench turns the surfaces on', async () => {
    const plain = await spawnServer(['--no-bench', '--admin-port', '0']);
    try {
      const listening = /^listening: .*$/m.exec(plain.output())![0];
      assert.doesNotMatch(listening, /\/echo|\/stats|\/metrics/);
      const admin = /^admin: (http:\/\/127\.0\.0\.1:\d+)\/stats/m.exec(plain.output());
      assert.ok(admin, plain.output());
      assert.equal((await fetch(`${admin[1]}/stats`)).status, 200);
      assert.match(plain.output(), /^slow io: off$/m);
    } finally {
      await plain.kill();
    }
    const bench = await spawnServer(['--bench', '--no-public-stats']);
    try {
      assert.match(bench.output(), /^listening: ws:\/\/\S+\/pubsub  ws:\/\/\S+\/echo  http:\/\/\S+\/health  \/publish/m);
      assert.equal((await fetch(`${bench.http}/stats`)).status, 404, 'a flag given itself wins over --bench');
      const echo = await TestClient.open(`${bench.ws}/echo?rounds=1`);
      assert.deepEqual(await echo.next(), { event: 'welcome' });
      await echo.close();
    } finally {
      await bench.kill();
    }
  });
});

