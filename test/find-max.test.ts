/**
 * `swarm --find-max`: steps of more and more clients until one fails, and the largest count that held.
 * Against a real server through the CLI (steps, the end at --max-clients, the CSV, the exit code), and
 * the failing cases through findMax itself: p99 over the limit and clients that fail.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findMax } from '../clients/swarm/find-max.js';
import { readCsv } from '../clients/swarm/output/csv.js';
import { echoServer } from './helpers/fake-servers.js';
import { startServer, type RunningServer } from './helpers/server.js';
import { runSwarm } from './helpers/swarm.js';


describe('swarm --find-max', () => {
  let server: RunningServer;
  before(async () => (server = await startServer()));
  after(() => server.close());

  it('doubles the clients while every step holds, and stops at --max-clients with that count', async () => {
    const out = mkdtempSync(join(tmpdir(), 'find-max-'));
    const stdout = await runSwarm([
      '--url', server.ws, '--find-max', '--clients', '10', '--max-clients', '40', '--p99-limit', '1000',
      '--ramp', '0.2', '--delay', '0.1', '--rounds', '2', '--out', out, '--name', 'fm',
    ]);
    assert.match(stdout, /find-max: 10 clients: p99 [\d.]+ ms, errors 0, lost 0, saturated: \w+ -> held/);
    assert.match(stdout, /find-max: the largest client count that held: 40 \(reached --max-clients 40\)/);
    const rows = readCsv(join(out, 'fm.csv'));
    assert.deepEqual(rows.map((r) => [r.clients, r.held]), [['10', 'yes'], ['20', 'yes'], ['40', 'yes']]);
    assert.ok(rows.every((r) => r.saturated !== ''), 'each step names its saturated side');
    assert.deepEqual(readdirSync(out), ['fm.csv']);
  });

  it('reports no count, and exits 1, when the first step already fails its p99 limit', async () => {
    await assert.rejects(
      runSwarm(['--url', server.ws, '--find-max', '--clients', '10', '--p99-limit', '0.001', '--ramp', '0.2', '--delay', '0.1', '--rounds', '2']),
      (err: { code: number; stdout: string }) => err.code === 1 && /the largest client count that held: none \(10 clients: p99 [\d.]+ ms above the limit of 0\.001 ms\)/.test(err.stdout),
    );
  });

  it('stops at the first step in which a client failed, keeping the count before it', async () => {
    const fake = await echoServer({ delayMs: 0, rounds: 2, dropEvery: 25 });
    try {
      const result = await findMax(
        { url: `${fake.url}/echo`, clients: 12, ramp: 0.1, delay: 0.05, rounds: 2, replyTimeout: 300, workers: 1 },
        { p99LimitMs: 1000, factor: 2, maxClients: 100 },
      );
      // The fake counts connections over both steps: the 25th (in the second step) never gets its second echo.
      assert.equal(result.held, 12);
      assert.deepEqual(result.steps.map((s) => s.held), [true, false]);
      assert.equal(result.ended, '24 clients: 1 client(s) failed');
    } finally {
      await fake.close();
    }
  });

  it('refuses scenarios it cannot judge, naming the flag', async () => {
    await assert.rejects(runSwarm(['--find-max', '--scenario', 'slow']), (err: { code: number; stderr: string }) => err.code === 2 && /--find-max runs the echo and broadcast scenarios \(got --scenario slow\)/.test(err.stderr));
  });
});
