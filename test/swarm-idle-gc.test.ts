/**
 * A swarm worker collects its garbage while no client of it is due (clients/swarm/worker.ts,
 * collectWhileIdle): in every gap between rounds that is longer than the margin, and never when the
 * next round is nearer, where the collection would land in the timed round trips. Read from V8's own
 * --trace-gc lines of the worker processes: a collection the program asks for is traced as "testing".
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type RunningServer } from './helpers/server.js';
import { runSwarm } from './helpers/swarm.js';

/** Requested (full) collections per worker pid, from the traced output of a swarm run. */
async function requestedCollections(url: string, delaySeconds: number): Promise<{ perWorker: Map<string, number>; output: string }> {
  const stdout = await runSwarm(['--url', url, '--clients', '200', '--workers', '2', '--ramp', '0.3', '--delay', String(delaySeconds), '--rounds', '3'], '--trace-gc');
  const perWorker = new Map<string, number>();
  for (const match of stdout.matchAll(/^\[(\d+):0x[0-9a-f]+\]\s+\d+ ms: (?:Mark-Compact|Scavenge)\b.*$/gm)) {
    perWorker.set(match[1], (perWorker.get(match[1]) ?? 0) + (/\btesting\b/.test(match[0]) ? 1 : 0));
  }
  return { perWorker, output: stdout };
}

describe('the swarm collects garbage between rounds, not during them', () => {
  let server: RunningServer;
  before(async () => (server = await startServer()));
  after(() => server.close());

  // Gaps of 2.5 s: the collection is due 1.1 s into one and checks again that no round is due within
  // 0.5 s, which leaves 0.6 s for a late timer on a loaded host.
  it('each worker collects in each gap of 2.5 s: before round 1, after rounds 1 and 2', async () => {
    const { perWorker, output } = await requestedCollections(`${server.ws}/echo?rounds=3`, 2.5);
    assert.match(output, /completed 200\/200/);
    assert.equal(perWorker.size, 2, `two traced workers: ${[...perWorker.keys()].join(', ')}`);
    for (const [pid, count] of perWorker) assert.ok(count >= 3, `worker ${pid}: ${count} requested collections, expected one per gap`);
  });

  it('no worker collects when the next round is never more than the margin (0.5 s) away', async () => {
    const { perWorker, output } = await requestedCollections(`${server.ws}/echo?rounds=3`, 0.3);
    assert.match(output, /completed 200\/200/);
    assert.equal(perWorker.size, 2);
    for (const [pid, count] of perWorker) assert.equal(count, 0, `worker ${pid} collected ${count} times`);
  });
});
