/**
 * bench-c1m end to end at a small count, against real server processes bridged by the real Redis: the
 * calibration measures the costs, and a run that fits holds every connection, loses no broadcast copy,
 * writes RSS per side and the slab each second, and compares the budget with what it measured (the
 * refusal of a count that does not fit: bench-c1m-refusal.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readCsv } from '../clients/swarm/output/csv.js';
import { runScript } from './helpers/process.js';
import { requireRedis } from './helpers/services.js';

const C1M = fileURLToPath(new URL('../bench/c1m.js', import.meta.url));

const c1m = (args: string[]) => runScript(C1M, args, 55_000);

describe('bench-c1m', () => {
  it('holds every connection of a count that fits, loses no copy, and compares the budget with what it measured', async () => {
    await requireRedis();
    const dir = mkdtempSync(join(tmpdir(), 'bench-c1m-'));
    try {
      const run = await c1m(['--clients', '4000', '--rate', '1000', '--hold', '10', '--broadcast-every', '4', '--out', dir]);
      assert.match(run.stdout, /^target PASS {2}4,000 connected at once: peak 4,000$/m, run.stdout);
      assert.match(run.stdout, /^target PASS {2}every client timed its echo: 4,000 of 4,000$/m);
      assert.match(run.stdout, /^target PASS {2}every broadcast reached every client \(copies lost 0\): 2 broadcasts, 2 published to 4,000 subscribers, 8,000 of 8,000 copies delivered, lost 0$/m);
      assert.match(run.stdout, /^target (PASS|FAIL) {2}memory within the budget \(\+15%\): -?[\d.]+ GiB taken from MemAvailable at the lowest against [\d.]+ GiB budgeted \(budget: server [\d.]+ GiB, swarm [\d.]+ GiB, kernel [\d.]+ GiB, shared [\d.]+ GiB; RSS at the peak, shared pages counted in every process: server [\d.]+ GiB, swarm [\d.]+ GiB; slab \+-?[\d.]+ GiB\)$/m);
      assert.match(run.stdout, /^ {2}memory holds [\d,]+ connections with the server alone on it/m);
      const timeline = readdirSync(dir).find((f) => /^c1m-\d{8}-\d{6}-timeline\.csv$/.test(f));
      assert.ok(timeline, `the timeline is written: ${readdirSync(dir).join(', ')}`);
      const rows = readCsv(join(dir, timeline));
      const held = rows.filter((r) => Number(r.connected) === 4000);
      assert.ok(held.length >= 5, `seconds with every connection held: ${held.length}`);
      for (const r of held) {
        assert.ok(Number(r.server_rss_mib) > 0 && Number(r.client_rss_mib) > 0 && Number(r.kernel_slab_mib) > 0, `RSS per side and the slab each second: ${JSON.stringify(r)}`);
        assert.notEqual(r.server_cpu_pct, '', 'server CPU each second');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
