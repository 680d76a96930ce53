/**
 * bench-recovery in a short form (200 subscribers on 20 channels over two Redis-bridged instances,
 * 3,000 msg/s for 8 s): every subscriber drops once and comes back on the other instance with `since`,
 * and must end with every message exactly once, in order. It found a subscriber getting a message
 * twice (once in its replay, once live) about once in 50 recoveries before the endpoint waited for the
 * broker's fence; the full bench (1,000 subscribers) is `make bench-recovery`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readCsv } from '../clients/swarm/output/csv.js';
import { REDIS_URL, requireRedis } from './helpers/services.js';

const BENCH = fileURLToPath(new URL('../bench/recovery.js', import.meta.url));

describe('bench-recovery, short form', () => {
  it('every subscriber that dropped and came back on the other instance holds every message once, in order', async () => {
    await requireRedis();
    const out = mkdtempSync(join(tmpdir(), 'recovery-'));
    try {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [BENCH, '--redis', REDIS_URL, '--subscribers', '200', '--channels', '20', '--rate', '3000', '--seconds', '8', '--away-max-ms', '1000', '--out', out],
        { timeout: 50_000 },
      );
      assert.match(stdout, /target PASS {2}every subscriber ends with every message exactly once, in order: 200\/200/);
      assert.match(stdout, /target PASS {2}every return is recovered:true: 200\/200/);
      assert.match(stdout, /recovery \(new connection to the subscribed ack, replay included\): p50 [\d.]+ p99 [\d.]+ max [\d.]+ ms over 200 recoveries/);
      const [runCsv] = readdirSync(out).filter((f) => /^recovery-\d{8}-\d{6}\.csv$/.test(f));
      const [run] = readCsv(join(out, runCsv));
      assert.deepEqual([run.exact, run.duplicates, run.missed, run.recovered_true, run.passed], ['200', '0', '0', '200', 'yes']);
      assert.equal(readCsv(join(out, runCsv.replace('.csv', '-subscribers.csv'))).length, 200, 'a row per subscriber');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
