/**
 * The live dashboard (`swarm --dashboard`, clients/swarm/output/dashboard.ts) in Chromium: during a run
 * the page's status and charts move second by second, a named timing gets its lines when it first
 * comes, and at the end the page is the run's static report; the same report is written with --out.
 * It answers only GET of / and /events.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { spawnServer, type ServerChild } from './helpers/process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SWARM = join(ROOT, 'dist/clients/cli.js');
const CHROMIUM = process.env.TEST_CHROMIUM ?? '/usr/bin/chromium';

describe('the live dashboard in Chromium', () => {
  let browser: Browser;
  let server: ServerChild;
  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is required by this test: apt-get install chromium, or set TEST_CHROMIUM`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    server = await spawnServer([]);
  });
  after(async () => {
    await browser?.close();
    await server?.kill();
  });

  it('shows the run live, second by second, and then its static report', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dashboard-'));
    const child = spawn(process.execPath, [SWARM, '--url', server.ws, '--scenario', join(ROOT, 'examples/scenarios/ping-check.mjs'), '--stage', '2s:0->60', '--stage', '4s:60',
      '--rounds', '2', '--dashboard', '--out', out, '--name', 'live', '--label', 'ours'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d) => {
        stderr += d;
        const found = /^dashboard: (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(stderr);
        if (found) resolve(found[1]);
      });
      void exited.then((code) => reject(new Error(`the swarm exited (${code}) before it served the dashboard: ${stderr}`)));
    });
    try {
      assert.equal((await fetch(url, { method: 'POST' })).status, 405);
      assert.equal((await fetch(new URL('/other', url))).status, 404);

      const page = await browser.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (err) => pageErrors.push(err.message));
      await page.goto(url);
      // Live: the status names a second with clients connected, then a later one; the charts grow with it.
      await page.waitForFunction('Number(document.getElementById("status")?.dataset.connected) > 0', null, { timeout: 15_000 });
      const first = Number(await page.getAttribute('#status', 'data-second'));
      await page.waitForFunction(`Number(document.getElementById("status")?.dataset.second) > ${first}`, null, { timeout: 5_000 });
      const live = await page.evaluate('({ points: charts[0].chart.data.labels.length, latency: charts.find((c) => c.spec.id === "live-latency").chart.data.datasets.map((d) => d.label), status: document.getElementById("status").textContent })') as { points: number; latency: string[]; status: string };
      assert.ok(live.points >= 2, `points so far: ${live.points}`);
      assert.ok(live.latency.includes('ping p99'), `the named timing is drawn: ${live.latency.join(', ')}`);
      assert.match(live.status, /connected \d+\/60 {3}stage [12], target [\d.]+ {3}checks [\d.]+% {3}errors 0 {3}saturated: /);

      // The end: the page becomes the run's static report.
      await page.waitForFunction('document.querySelector("h1")?.textContent?.startsWith("swarm run: ")', null, { timeout: 30_000 });
      assert.equal(await page.locator('canvas#live-connections').count(), 1);
      assert.match(await page.locator('section#run table').innerText(), /completed \d+ runs of the scenario/);
      assert.deepEqual(pageErrors, []);
      assert.equal(await exited, 0, stdout + stderr);
      const written = readFileSync(join(out, 'live-report.html'), 'utf8');
      assert.match(written, /<h1>swarm run: ours, .*ping-check\.mjs<\/h1>/);
      assert.match(stdout, /^report: .*live-report\.html$/m);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
