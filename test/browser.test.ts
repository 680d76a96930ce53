/**
 * The browser client in a real browser: Debian's Chromium driven by playwright-core. A page imports
 * /client.js from the server, subscribes, publishes, rides out a server restart and loses nothing, with
 * the history kept in Redis. And the results report: built from the CSVs of a real swarm run, it
 * opens from a file, draws every chart with data points, and logs no error. `.ci/run` installs
 * chromium when it is missing; a missing browser fails the test and names the package.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { onFreePort } from './helpers/ports.js';
import { eventually, startServer } from './helpers/server.js';
import { dropRedisKeys, REDIS_URL } from './helpers/services.js';

const CHROMIUM = process.env.TEST_CHROMIUM ?? '/usr/bin/chromium';
const SWARM = fileURLToPath(new URL('../clients/cli.js', import.meta.url));
const REPORT = fileURLToPath(new URL('../bench/report.js', import.meta.url));
const run = promisify(execFile);

/** What the page keeps of its client, on `globalThis.t`. */
interface PageState {
  seen: unknown[];
  states: string[];
  resubscribed: [string, boolean][];
}

/** Console errors and uncaught exceptions of a page. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

describe('the browser client in Chromium', () => {
  let browser: Browser;
  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is required by this test: apt-get install chromium, or set TEST_CHROMIUM`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(() => browser?.close());

  it('subscribes, publishes, reconnects after a server restart and loses nothing (history in Redis)', async () => {
    const prefix = `browser-${randomBytes(4).toString('hex')}`;
    const options = { redis: REDIS_URL, prefix, history: 100, publishKey: 'k' };
    // Below the ephemeral range, so nothing takes the port while the server is down.
    let first = await onFreePort((port) => startServer({ ...options, port }));
    const other = await startServer(options);
    const page = await browser.newPage();
    const errors = watchErrors(page);
    const state = (): Promise<PageState> => page.evaluate(() => (globalThis as unknown as { t: PageState }).t);
    try {
      await page.goto(`${first.http}/health`); // an origin of the server's, to import /client.js from
      await page.evaluate(async ([origin, url]) => {
        const { connect } = await import(`${origin}/client.js`);
        const t: PageState = { seen: [], states: [], resubscribed: [] };
        (globalThis as unknown as { t: PageState }).t = t;
        const client = connect(url, { minDelayMs: 20, maxDelayMs: 200 });
        client.on('state', (s: string) => t.states.push(s));
        client.on('resubscribed', (channel: string, recovered: boolean) => t.resubscribed.push([channel, recovered]));
        await client.subscribe('feed', (m: unknown) => t.seen.push(m)).ready;
        await client.publish('feed', 0); // resolves on the server's ack
      }, [first.http, first.ws]);
      const publish = async (n: number) => {
        const res = await fetch(`${other.http}/publish`, { method: 'POST', headers: { authorization: 'Bearer k' }, body: JSON.stringify({ channel: 'feed', message: n }) });
        assert.equal(res.status, 202);
      };
      for (let n = 1; n <= 5; n++) await publish(n);
      await eventually(async () => (await state()).seen.length === 6);

      const port = first.port;
      await first.close();
      await eventually(async () => (await state()).states.includes('reconnecting'));
      for (let n = 6; n <= 10; n++) await publish(n); // while the page is away
      first = await startServer({ ...options, port });
      await eventually(async () => (await state()).resubscribed.length === 1, 10_000);
      await publish(11);
      await eventually(async () => (await state()).seen.length >= 12);
      const t = await state();
      assert.deepEqual(t.seen, Array.from({ length: 12 }, (_, i) => i), 'every message once, in order');
      assert.deepEqual(t.resubscribed, [['feed', true]]);
      assert.deepEqual(t.states, ['open', 'reconnecting', 'open']);
      // Chromium logs each refused reconnect attempt itself; nothing else may be logged.
      const unexpected = errors.filter((e) => !/^WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/pubsub' failed/.test(e));
      assert.deepEqual(unexpected, []);
    } finally {
      await page.close();
      await Promise.all([first.close(), other.close()]);
      await dropRedisKeys(prefix);
    }
  });

  it('the results report: built from a real run\'s CSVs, self-contained, every chart with data points, no console error', async () => {
    const server = await startServer();
    const dir = mkdtempSync(join(tmpdir(), 'report-'));
    try {
      // A small echo run writes what bench-c10k writes: its timeline, its summary and a history row.
      await run(process.execPath, [SWARM, '--url', server.ws, '--clients', '200', '--ramp', '1', '--delay', '1', '--rounds', '2', '--out', dir, '--name', 'c10k-20261201-000000', '--server-pid', String(process.pid), '--host-check', '0.5'], { timeout: 40_000 });
      const { stdout } = await run(process.execPath, [REPORT, '--results', dir], { timeout: 20_000 });
      assert.match(stdout, /^report: .*report\.html \(c10k, history\)$/m);
      const html = readFileSync(join(dir, 'report.html'), 'utf8');
      assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'nothing loaded from elsewhere: it opens offline');
      const page = await browser.newPage();
      const errors = watchErrors(page);
      try {
        await page.goto(`file://${join(dir, 'report.html')}`);
        // Chart.js's own data of each canvas: the points each dataset holds.
        const points = await page.evaluate(() => {
          const chart = (globalThis as unknown as { Chart: { getChart(c: unknown): { data: { datasets: { data: unknown[] }[] } } } }).Chart;
          const canvases = [...(globalThis as unknown as { document: { querySelectorAll(s: string): Iterable<{ id: string }> } }).document.querySelectorAll('canvas')];
          return Object.fromEntries(canvases.map((c) => [c.id, chart.getChart(c).data.datasets.map((d) => d.data.filter((v) => v !== null).length)]));
        });
        assert.deepEqual(Object.keys(points), ['c10k-connections', 'c10k-cpu', 'history-echo', 'history-broadcast']);
        // connected, completed, rtt p50, rtt p99; server CPU, swarm CPU, server RSS (the server is this process).
        for (const id of ['c10k-connections', 'c10k-cpu']) assert.ok(points[id].every((n: number) => n >= 1), `${id}: ${points[id]}`);
        assert.ok(points['c10k-connections'][0] >= 2, 'connected: a point per second of the run');
        assert.deepEqual(points['history-echo'], [1, 1, 1], 'the one run: rtt p99, connect rate, host reference');
        assert.deepEqual(errors, []);
      } finally {
        await page.close();
      }
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
