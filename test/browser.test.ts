/**
 * The browser client in a real browser: Debian's Chromium driven by playwright-core. A page imports
 * /client.js from the server, subscribes, publishes, rides out a server restart and loses nothing, with
 * the history kept in Redis. `.ci/run` installs chromium when it is missing; a missing browser fails
 * the test and names the package.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { onFreePort } from './helpers/ports.js';
import { eventually, startServer } from './helpers/server.js';
import { dropRedisKeys, REDIS_URL } from './helpers/services.js';

const CHROMIUM = process.env.TEST_CHROMIUM ?? '/usr/bin/chromium';

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
});
