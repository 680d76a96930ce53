/**
 * Ctrl-C keeps what was measured: the swarm and a bench, interrupted as a terminal does it (SIGINT to
 * the whole process group), print their summary marked interrupted, write their CSVs with the mark,
 * leave no process behind, and exit 130.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readCsv } from '../clients/swarm/output/csv.js';
import { isAlive } from './helpers/process.js';
import { eventually, startServer } from './helpers/server.js';
import { SWARM } from './helpers/swarm.js';

const C10K = fileURLToPath(new URL('../bench/c10k.js', import.meta.url));

interface Run {
  pid: number;
  output(): string;
  exited: Promise<number | null>;
}

/** Starts a command in a process group of its own, so the test can signal the group as a terminal would. */
function run(script: string, args: string[]): Run {
  const child = spawn(process.execPath, [script, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (chunk) => (out += chunk));
  child.stderr!.on('data', (chunk) => (out += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { pid: child.pid!, output: () => out, exited };
}

describe('Ctrl-C', () => {
  it('stops a swarm run with its summary and CSVs, marked interrupted, and exit 130', async () => {
    const server = await startServer();
    const dir = mkdtempSync(join(tmpdir(), 'interrupt-'));
    try {
      const swarm = run(SWARM, ['--url', server.ws, '--clients', '40', '--ramp', '0.5', '--delay', '60', '--rounds', '2', '--out', dir, '--name', 'cut']);
      await eventually(() => swarm.output().includes('40 clients are connected!'), 20_000);
      process.kill(-swarm.pid, 'SIGINT');
      assert.equal(await swarm.exited, 130, swarm.output());
      const out = swarm.output();
      assert.match(out, /INTERRUPTED \(SIGINT\): the figures cover the run until then/);
      assert.match(out, /completed 0\/40 {3}errors 40 \(deadline 40\) {3}peak connected 40/);
      const [summary] = readCsv(join(dir, 'cut-summary.csv'));
      assert.equal(summary.interrupted, 'SIGINT');
      assert.equal(summary.peak_connected, '40');
      assert.equal(summary.err_deadline, '40');
      assert.equal(readCsv(join(dir, 'history.csv')).at(-1)!.interrupted, 'SIGINT');
      assert.ok(readCsv(join(dir, 'cut-timeline.csv')).length >= 1, 'the timeline of what ran');
      await eventually(async () => (await server.stats()).connections === 0, 5000);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops a bench with its summary, its CSVs and its server gone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'interrupt-'));
    try {
      const bench = run(C10K, ['--clients', '40', '--ramp', '0.5', '--delay', '60', '--out', dir]);
      await eventually(() => bench.output().includes('40 clients are connected!'), 30_000);
      const serverPid = Number(/server pid (\d+)/.exec(bench.output())![1]);
      process.kill(-bench.pid, 'SIGINT');
      assert.equal(await bench.exited, 130, bench.output());
      assert.match(bench.output(), /INTERRUPTED \(SIGINT\)/);
      const summaries = readdirSync(dir).filter((f) => f.endsWith('-summary.csv'));
      assert.equal(summaries.length, 1, readdirSync(dir).join(', '));
      assert.equal(readCsv(join(dir, summaries[0]))[0].interrupted, 'SIGINT');
      assert.equal(readCsv(join(dir, 'history.csv')).at(-1)!.interrupted, 'SIGINT');
      assert.equal(isAlive(serverPid), false, 'the bench stopped its server');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
