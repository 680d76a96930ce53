/** The host check: it sees the cores it is denied, and the reference work slows with them. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { checkHost, hostLine, STALL_MS } from '../clients/host/host-check.js';

describe('host check', () => {
  it('reports the time other processes take from its spinning threads', async () => {
    const quiet = await checkHost(0.5);
    assert.equal(quiet.threads, availableParallelism());
    assert.ok(quiet.stalledPct >= 0 && quiet.stalledPct < 100, `quiet: stalled ${quiet.stalledPct}%`);
    assert.ok(quiet.referenceMs > 0, `quiet: reference ${quiet.referenceMs} ms`);

    // One busy process per core: the spinning threads now share every core with one, so each gets about
    // half of its time, in slices of milliseconds.
    const hogs = Array.from({ length: availableParallelism() }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const loaded = await checkHost(0.5);
      assert.ok(loaded.stalledPct > 20, `loaded: stalled ${loaded.stalledPct}% (quiet ${quiet.stalledPct}%)`);
      assert.ok(loaded.stalledPct > quiet.stalledPct + 10, `loaded ${loaded.stalledPct}% vs quiet ${quiet.stalledPct}%`);
      assert.ok(loaded.longestStallMs > STALL_MS, `loaded: longest stall ${loaded.longestStallMs} ms`);
      assert.ok(loaded.referenceMs > quiet.referenceMs * 1.2, `reference work: loaded ${loaded.referenceMs} ms vs quiet ${quiet.referenceMs} ms`);
      assert.match(hostLine(loaded), /^host {5}stalled \d+\.\d% of 0\.5 s on \d+ spinning threads/);
    } finally {
      for (const hog of hogs) hog.kill('SIGKILL');
    }
  });

  it('refuses a duration that is not above 0', async () => {
    await assert.rejects(checkHost(0), /^RangeError: host check: seconds must be above 0, got 0$/);
  });
});
