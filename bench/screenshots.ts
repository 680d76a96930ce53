/**
 * `make screenshots`: PNGs of the Life page (a 32 x 32 demo, live) and of the results report (built
 * from results/ first) into docs/, which README shows. Uses Debian's chromium through playwright-core.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { benchCli, RESULTS_DIR, writeReport } from './lib/run.js';

const args = await benchCli('screenshots', '$0 [flags]\n\nPNGs of the Life page and of the results report into docs/.')
  .option('chromium', { type: 'string', default: '/usr/bin/chromium', describe: "the browser to drive (Debian's chromium: apt-get install chromium)" })
  .option('out', { type: 'string', default: fileURLToPath(new URL('../../docs/', import.meta.url)), describe: 'directory for life.png and report.png' })
  .option('page-port', { type: 'number', default: 9080, describe: "the Life page's port" })
  .parseAsync();
if (!existsSync(args.chromium)) {
  console.error(`screenshots: no browser at ${args.chromium} (--chromium): apt-get install chromium`);
  process.exit(1);
}

const browser = await chromium.launch({ executablePath: args.chromium, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 960, height: 1000 } });

  // The Life page: the demo runs live until it has drawn a dozen generations.
  const life = spawn(process.execPath, [fileURLToPath(new URL('./life.js', import.meta.url)), '--size', '32', '--delay-ms', '150', '--page-port', String(args.pagePort)], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      life.stdout!.on('data', (d) => {
        out += d;
        const live = /live at (http\S+)/.exec(out);
        if (live) resolve(live[1]);
      });
      life.once('exit', (code) => reject(new Error(`demo-life exited (${code}) before it was live`)));
    });
    await page.goto(url);
    await page.waitForFunction(() => Number((globalThis as unknown as { document: { getElementById(id: string): { textContent: string } } }).document.getElementById('generation').textContent) >= 12, undefined, { timeout: 60_000 });
    await page.screenshot({ path: join(args.out, 'life.png') });
    console.log(`screenshots: ${join(args.out, 'life.png')}`);
  } finally {
    life.kill('SIGINT');
  }

  // The report, from what results/ holds now.
  const report = writeReport(RESULTS_DIR);
  await page.setViewportSize({ width: 1200, height: 1100 });
  await page.goto(`file://${report}`);
  await page.screenshot({ path: join(args.out, 'report.png') });
  console.log(`screenshots: ${join(args.out, 'report.png')}`);
} finally {
  await browser.close();
}
