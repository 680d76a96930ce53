/**
 * bench-c1m refuses a count whose budget does not fit, after its calibration against a real server
 * process and before any connection of the run (a file of its own: with the run's test, one file would
 * pass the test runner's 60 s per file).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runScript } from './helpers/process.js';
import { requireRedis } from './helpers/services.js';

const C1M = fileURLToPath(new URL('../bench/c1m.js', import.meta.url));

const c1m = (args: string[]) => runScript(C1M, args, 55_000);

describe('bench-c1m', () => {
  it('refuses a count whose budget does not fit, naming the count that does, before any connection', async () => {
    await requireRedis();
    // A reserve of 64 GiB leaves no room on any machine this runs on.
    const run = await c1m(['--clients', '100000', '--reserve', String(64 * 1024)]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stdout, /^bench-c1m: measured per connection: server [\d,]+ B, swarm [\d,]+ B, kernel slab [\d,]+ B \(both sockets\); each process alone: server supervisor \d+ MiB, server process \d+ MiB, swarm engine \d+ MiB, swarm worker \d+ MiB; shared by all, once: \d+ MiB$/m);
    assert.match(run.stdout, /^bench-c1m: budget for 100,000 connections \(6 server processes, 6 swarm workers, 4 source addresses\): server [\d.]+ GiB \+ swarm [\d.]+ GiB \+ kernel [\d.]+ GiB \+ shared [\d.]+ GiB = [\d.]+ GiB; MemAvailable/m);
    assert.match(run.stderr, /^bench-c1m: 100,000 connections need [\d.]+ GiB, more than the 0\.00 GiB this machine has free after the reserve; not even 10,000 fit/m);
    assert.doesNotMatch(run.stdout, /^bench-c1m: .* on ports \d+-\d+, bridged by/m, 'no server of the big run started');
  });
});
