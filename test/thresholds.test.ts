/**
 * Thresholds (clients/swarm/thresholds.ts, `--threshold`, `--abort-on-fail`, `--summary-json`): what
 * parses and what is refused; then the swarm command against our server, where they decide the exit
 * code: all passing (0, the JSON holding every figure), one failing at the end (1), one failing early
 * stopping the run within seconds (1), and a figure the run did not measure failing rather than passing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { judge, parseThreshold } from '../clients/swarm/thresholds.js';
import { emptyCounters } from '../clients/swarm/metrics.js';
import { runScript, spawnServer, type ServerChild } from './helpers/process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SWARM = join(ROOT, 'dist/clients/cli.js');
const PING_CHECK = join(ROOT, 'examples/scenarios/ping-check.mjs');

describe('thresholds: parsing and judging', () => {
  it('reads figures with their stat, selector, operator and limit, and refuses what is not one', () => {
    assert.deepEqual(parseThreshold('rtt_p99<50'), { text: 'rtt_p99<50', figure: 'latency', name: 'rtt', stat: 'p99', operator: '<', limit: 50 });
    assert.deepEqual(parseThreshold(' publish_ack_max <= 2.5 '), { text: 'publish_ack_max <= 2.5', figure: 'latency', name: 'publish_ack', stat: 'max', operator: '<=', limit: 2.5 });
    assert.deepEqual(parseThreshold('checks{status is 200}>=0.99'), { text: 'checks{status is 200}>=0.99', figure: 'checks', name: 'status is 200', operator: '>=', limit: 0.99 });
    assert.deepEqual(parseThreshold('errors{timeout}==0'), { text: 'errors{timeout}==0', figure: 'errors', kind: 'timeout', operator: '==', limit: 0 });
    assert.equal(parseThreshold('completed!=0').figure, 'completed');
    for (const [text, message] of [
      ['rtt_p99', /is not <figure><operator><number>/],
      ['rtt_p99<<5', /is not <figure><operator><number>/],
      ['rtt_p42<5', /a timing's figure is <name>_<stat>/],
      ['rtt<5', /a timing's figure is <name>_<stat>/],
      ['errors{nap}==0', /errors\{nap\} names no error kind/],
      ['lost{x}==0', /lost takes no \{selector\}/],
    ] as const) assert.throws(() => parseThreshold(text), message, text);
  });

  it('judges each on the figures, and a figure not measured fails', () => {
    const counters = { ...emptyCounters(), completed: 9 };
    counters.errors.timeout = 1;
    const rtt = { count: 100, min: 1, mean: 2, p50: 2, p90: 3, p99: 4, p999: 5, max: 6 };
    const run = { counters, lostDeliveries: null, checks: { ok: { passed: 99, failed: 1 } }, timings: { login: rtt }, connect: null, rtt, slow: null, fanout: null, lag: null, loop: null };
    const results = judge(['rtt_p99<5', 'login_max<6', 'checks>=0.99', 'checks{ok}>0.99', 'errors==0', 'errors{timeout}<=1', 'completed>=9', 'fanout_p99<100', 'checks{nope}>=0'].map(parseThreshold), run);
    assert.deepEqual(results.map((r) => [r.threshold, r.measured, r.pass]), [
      ['rtt_p99<5', 4, true], ['login_max<6', 6, false], ['checks>=0.99', 0.99, true], ['checks{ok}>0.99', 0.99, false],
      ['errors==0', 1, false], ['errors{timeout}<=1', 1, true], ['completed>=9', 9, true], ['fanout_p99<100', null, false], ['checks{nope}>=0', null, false],
    ]);
  });
});

describe('thresholds decide the swarm command\'s exit code', () => {
  let server: ServerChild;
  let dir: string;
  before(async () => {
    server = await spawnServer([]);
    dir = mkdtempSync(join(tmpdir(), 'thresholds-'));
  });
  after(() => server.kill());

  const swarm = (args: string[]) => runScript(SWARM, ['--url', server.ws, '--ramp', '0.5', ...args], 40_000);

  it('all pass: exit 0, each printed PASS, every figure in --summary-json', async () => {
    const json = join(dir, 'pass.json');
    const run = await swarm(['--scenario', PING_CHECK, '--clients', '100', '--rounds', '2', '--summary-json', json,
      '--threshold', 'errors==0', '--threshold', 'checks{answered with pong}>=1', '--threshold', 'ping_p99<5000', '--threshold', 'completed==100']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    for (const t of ['errors==0', 'checks{answered with pong}>=1', 'ping_p99<5000', 'completed==100']) assert.match(run.stdout, new RegExp(`^threshold PASS  ${t.replace(/[{}]/g, '\\$&')} \\(measured `, 'm'));
    const written = JSON.parse(readFileSync(json, 'utf8'));
    assert.equal(written.summary.counters.completed, 100);
    assert.equal(written.summary.timings.ping.count, 200);
    assert.equal(written.row.thresholds_failed, 0);
    assert.deepEqual(written.thresholds.map((t: { pass: boolean }) => t.pass), [true, true, true, true]);
  });

  it('one fails at the end: exit 1 although every client completed; one not measured fails too', async () => {
    const run = await swarm(['--scenario', PING_CHECK, '--clients', '50', '--rounds', '1', '--threshold', 'ping_p99<0.001', '--threshold', 'fanout_p99<100', '--threshold', 'errors==0']);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stdout, /^completed 50\/50 {3}errors 0/m);
    assert.match(run.stdout, /^threshold FAIL  ping_p99<0\.001 \(measured [\d.]+\)$/m);
    assert.match(run.stdout, /^threshold FAIL  fanout_p99<100 \(not measured in this run\)$/m);
    assert.match(run.stdout, /^threshold PASS  errors==0 /m);
  });

  it('--abort-on-fail stops the run at the first second a threshold fails: exit 1 within seconds, not after the scenario', async () => {
    const slowFlow = join(dir, 'slow-flow.mjs');
    writeFileSync(slowFlow, `export default async function (ctx) {
      const socket = await ctx.connect();
      ctx.check(ctx.index % 10 !== 0, 'nine in ten');
      await ctx.sleep(30_000);
      await socket.close();
    }\n`);
    const started = Date.now();
    const run = await swarm(['--scenario', slowFlow, '--clients', '50', '--threshold', 'checks>=0.95', '--abort-on-fail']);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.ok(seconds < 15, `stopped after ${seconds.toFixed(1)} s, the scenario takes 30`);
    // Judged on the reports in by then: below 0.95 whenever client 0 (a failing one) is among them.
    assert.match(run.stdout, /INTERRUPTED \(threshold checks>=0\.95 failed \(measured 0\.\d+\)\)/);
    assert.match(run.stdout, /^threshold FAIL  checks>=0\.95 \(measured 0\.9\)$/m);
    assert.match(run.stdout, /errors 50 \(deadline 50\)/);
  });

  it('refuses a threshold it cannot read, and --abort-on-fail without one (exit 2)', async () => {
    const bad = await swarm(['--threshold', 'p99 under 50']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--threshold must be <figure><operator><number>/);
    const alone = await swarm(['--abort-on-fail']);
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /--abort-on-fail needs at least one --threshold/);
  });
});
