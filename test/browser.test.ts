/**
 * The browser client in a real browser: Debian's Chromium driven by playwright-core. A page imports
 * /client.js from the server, subscribes, publishes, rides out a server restart and loses nothing, with
 * the history kept in Redis. The Life demo's page, drawing generation after generation. Two pages of the
 * live comments demo, each seeing the other's comment and who is here. And the results report: built from the CSVs of a real swarm run, it
 * opens from a file, draws every chart with data points, and logs no error. `.ci/run` installs
 * chromium when it is missing; a missing browser fails the test and names the package.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createServer as createHttpServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { chromium, type Browser, type Page } from 'playwright-core';
import { onFreePort } from './helpers/ports.js';
import { rawHttp, upgradeRequest } from './helpers/raw.js';
import { eventually, startServer } from './helpers/server.js';
import { dropRedisKeys, REDIS_URL } from './helpers/services.js';

const CHROMIUM = process.env.TEST_CHROMIUM ?? '/usr/bin/chromium';
const SWARM = fileURLToPath(new URL('../clients/cli.js', import.meta.url));
const REPORT = fileURLToPath(new URL('../bench/report.js', import.meta.url));
const LIFE = fileURLToPath(new URL('../bench/life.js', import.meta.url));
const COMMENTS = fileURLToPath(new URL('../bench/comments.js', import.meta.url));
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

/** A demo program running live on a free page port: its page's URL, and Ctrl-C (resolves with its exit code). */
function liveDemo(script: string, flags: string[]): Promise<{ url: string; stop: () => Promise<number | null> }> {
  return onFreePort((port) => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...flags, '--page-port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    child.stdout!.on('data', (d) => {
      out += d;
      const live = /live at (http\S+)/.exec(out);
      if (live) resolve({ url: live[1], stop: () => (child.kill('SIGINT'), exited) });
    });
    child.stderr!.on('data', (d) => (err += d));
    void exited.then((code) => reject(new Error(`${script} exited (${code}) before it was live: ${err}`)));
  }));
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

  it('refuses a page of another origin riding the token cookie (403, counted); the own origin and a listed one get in', async () => {
    const secret = 'a-browser-test-secret-of-32-bytes!!';
    const jwt = await new SignJWT({ sub: 'victim' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(secret));
    // The attacker's page: another port of the same host is another origin, and the same site, so
    // Chromium sends the host's cookies with the WebSocket it opens.
    const attacker = createHttpServer((_req, res) => void res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>elsewhere</title>'));
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    const attackerOrigin = `http://127.0.0.1:${(attacker.address() as { port: number }).port}`;
    const context = await browser.newContext();
    const opens = async (page: Page, url: string, protocols: string[] = []): Promise<string> =>
      page.evaluate(([wsUrl, offered]) => new Promise<string>((resolve) => {
        const ws = new WebSocket(wsUrl as string, offered as string[]);
        ws.onmessage = (e) => (resolve(`${ws.protocol} ${String(e.data)}`.trim()), ws.close());
        ws.onclose = (e) => resolve(`closed ${e.code}`);
      }), [url, protocols] as const);
    const welcomeOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf('{'))) as { event: string; user: string | null };
    const plain = await startServer({ jwtSecret: secret });
    const listed = await startServer({ jwtSecret: secret, allowedOrigins: [attackerOrigin] });
    try {
      await context.addCookies([{ name: 'token', value: jwt, domain: '127.0.0.1', path: '/' }]);
      const own = await context.newPage();
      await own.goto(`${plain.http}/health`);
      const welcome = welcomeOf(await opens(own, `${plain.ws}/pubsub`));
      assert.deepEqual([welcome.event, welcome.user], ['welcome', 'victim'], 'the server\'s own page gets in with the cookie');

      const foreign = await context.newPage();
      await foreign.goto(attackerOrigin);
      assert.equal(await opens(foreign, `${plain.ws}/pubsub`), 'closed 1006', 'the other origin is refused');
      assert.equal(await opens(foreign, `${plain.ws}/echo?rounds=1`), 'closed 1006');
      assert.equal((await plain.stats()).refused.origin, 2);
      const sent = await rawHttp(plain.port, upgradeRequest('/pubsub', [`Origin: ${attackerOrigin}`, `Cookie: token=${jwt}`]));
      assert.equal(sent.status, 403, 'the refusal is a 403 at the upgrade');
      const stranger = await browser.newPage(); // no cookie: it brings nothing of anyone's, and is not checked without a list
      try {
        await stranger.goto(attackerOrigin);
        const anonymous = welcomeOf(await opens(stranger, `${plain.ws}/pubsub`));
        assert.deepEqual([anonymous.event, anonymous.user], ['welcome', null]);
        // A token the page gives itself, in Sec-WebSocket-Protocol: its own doing, so any origin may; the
        // server answers with the plain protocol, and the token stays out of the URL.
        const explicit = await opens(stranger, `${plain.ws}/pubsub`, ['pubsub', `bearer.${jwt}`]);
        assert.equal(explicit.split(' ')[0], 'pubsub');
        assert.deepEqual([welcomeOf(explicit).event, welcomeOf(explicit).user], ['welcome', 'victim']);
      } finally {
        await stranger.close();
      }

      const allowed = welcomeOf(await opens(foreign, `${listed.ws}/pubsub`));
      assert.deepEqual([allowed.event, allowed.user], ['welcome', 'victim'], 'a listed origin gets in');
      await own.goto(`${listed.http}/health`);
      assert.equal(welcomeOf(await opens(own, `${listed.ws}/pubsub`)).user, 'victim', 'and the own origin still does');
    } finally {
      await context.close();
      attacker.close();
      await Promise.all([plain.close(), listed.close()]);
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
        assert.deepEqual(Object.keys(points), ['c10k-connections', 'c10k-cpu', 'c10k-memory', 'history-echo', 'history-broadcast']);
        // connected, completed, rtt p50, rtt p99; server CPU, swarm CPU, server RSS (the server is this
        // process); server RSS, swarm RSS, kernel slab, connected.
        for (const id of ['c10k-connections', 'c10k-cpu', 'c10k-memory']) assert.ok(points[id].every((n: number) => n >= 1), `${id}: ${points[id]}`);
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

  it('the Life page draws the grid on a canvas and changes generation after generation', async () => {
    const demo = await liveDemo(LIFE, ['--size', '10', '--delay-ms', '50']);
    const page = await browser.newPage();
    const errors = watchErrors(page);
    try {
      await page.goto(demo.url);
      const generation = async (): Promise<number> => Number((await page.textContent('#generation')) ?? NaN);
      /** How many different colours the canvas shows, and a digest of its pixels. */
      const canvas = (): Promise<{ colours: number; digest: string }> => page.evaluate(() => {
        const doc = (globalThis as unknown as { document: { getElementById(id: string): { width: number; height: number; getContext(k: string): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } } } }).document;
        const c = doc.getElementById('grid');
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const seen = new Set<number>();
        let digest = 0;
        for (let i = 0; i < data.length; i += 4) {
          const rgb = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
          seen.add(rgb);
          digest = (digest * 31 + rgb) >>> 0;
        }
        return { colours: seen.size, digest: String(digest) };
      });
      await eventually(async () => (await generation()) >= 2, 20_000);
      const first = { generation: await generation(), canvas: await canvas() };
      await eventually(async () => (await generation()) >= first.generation + 3, 20_000);
      const later = await canvas();
      assert.ok(first.canvas.colours >= 2, `alive and dead cells drawn: ${first.canvas.colours} colours`);
      assert.notEqual(later.digest, first.canvas.digest, 'the drawing changed with the generations');
      assert.equal(await page.textContent('#state'), 'open');
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
      assert.equal(await demo.stop(), 0, 'Ctrl-C stops the demo cleanly');
    }
  });

  it('live comments: a comment saved from one page appears on the other, with how many people are here', async () => {
    const demo = await liveDemo(COMMENTS, ['--table', `comments_${randomBytes(4).toString('hex')}`, '--fresh']);
    const [ann, bob] = [await browser.newPage(), await browser.newPage()];
    const errors = [watchErrors(ann), watchErrors(bob)];
    try {
      await ann.goto(demo.url);
      await bob.goto(demo.url);
      for (const page of [ann, bob]) await page.waitForFunction(() => (globalThis as unknown as { document: { getElementById(id: string): { textContent: string } } }).document.getElementById('people').textContent === '2 people here');
      await ann.fill('#name', 'ann');
      await ann.fill('#body', 'hello from ann');
      await ann.click('button');
      await bob.waitForSelector('li:has-text("hello from ann")');
      await bob.fill('#name', 'bob');
      await bob.fill('#body', 'hi ann');
      await bob.click('button');
      await ann.waitForSelector('li:has-text("hi ann")');
      assert.deepEqual(await ann.$$eval('li', (items) => items.map((i) => i.textContent)), ['bobhi ann', 'annhello from ann'], 'newest first, each once');
      await bob.close();
      await ann.waitForFunction(() => (globalThis as unknown as { document: { getElementById(id: string): { textContent: string } } }).document.getElementById('people').textContent === '1 person here');
      assert.deepEqual(errors.flat(), []);
    } finally {
      if (!ann.isClosed()) await ann.close();
      if (!bob.isClosed()) await bob.close();
      assert.equal(await demo.stop(), 0, 'Ctrl-C stops the demo cleanly');
    }
  });
});
