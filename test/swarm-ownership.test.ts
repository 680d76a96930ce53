/**
 * Whose a printed latency is (clients/swarm/harness-share.ts): the swarm samples its workers' own loop
 * delay over the reports that timed a latency, and calls a p99 the server's only while that delay is a
 * small part of it. Against a fake server that holds every echo 60 ms the verdict is the server's; with
 * the same server answering at once and the swarm's worker made to stall (a preloaded script that keeps
 * its loop busy 30 ms of every 50), the verdict is the swarm's, in the summary, the CSV row and the text.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Swarm } from '../clients/swarm/swarm.js';
import { ownership, SERVER_SHARE_BELOW, SWARM_SHARE_FROM } from '../clients/swarm/harness-share.js';
import { summaryRow } from '../clients/swarm/output/csv.js';
import { ownershipLines } from '../clients/swarm/output/summary.js';
import { echoServer, type FakeServer } from './helpers/fake-servers.js';

const servers: FakeServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function run(delayMs: number, workerArgs = ''): Promise<Awaited<ReturnType<Swarm['run']>>> {
  const server = await echoServer({ delayMs, rounds: 3 });
  servers.push(server);
  const before = process.env.SWARM_WORKER_NODE_ARGS;
  process.env.SWARM_WORKER_NODE_ARGS = workerArgs;
  try {
    // The swarm forks its worker inside run(), reading the variable then.
    return await new Swarm({ url: `${server.url}/echo`, clients: 100, ramp: 0.5, delay: 0.4, rounds: 3, workers: 1, hostCheck: 0 }).run();
  } finally {
    if (before === undefined) delete process.env.SWARM_WORKER_NODE_ARGS;
    else process.env.SWARM_WORKER_NODE_ARGS = before;
  }
}

describe('whose latency', () => {
  it('calls a 60 ms hold the server\'s', async (t) => {
    const summary = await run(60);
    assert.equal(summary.counters.completed, 100);
    assert.ok(summary.rtt && summary.loop, 'round trips and loop samples were recorded');
    const verdict = ownership(summary.rtt, summary.loop)!;
    t.diagnostic(`rtt p99 ${summary.rtt.p99} ms, swarm loop p99 ${summary.loop.p99} ms, share ${verdict.share.toFixed(3)}`);
    assert.equal(verdict.owner, 'server', `the swarm's loop p99 ${summary.loop.p99} ms is under ${SERVER_SHARE_BELOW * 100}% of ${summary.rtt.p99} ms`);
    assert.equal(summaryRow(summary, 'fake', 'r').rtt_owner, 'server');
    assert.match(ownershipLines(summary).join('\n'), /rtt p99 [\d.]+ ms is the server's/);
  });

  it('calls it the swarm\'s when the swarm\'s own loop stalls', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'stall-'));
    const stall = join(dir, 'stall.cjs');
    // Busy for 30 ms of every 50: every reply that arrives meanwhile waits for the loop.
    writeFileSync(stall, 'setInterval(() => { const end = performance.now() + 30; while (performance.now() < end); }, 20).unref();\n');
    const summary = await run(0, `--require ${stall}`);
    assert.equal(summary.counters.completed, 100);
    assert.ok(summary.rtt && summary.loop, 'round trips and loop samples were recorded');
    const verdict = ownership(summary.rtt, summary.loop)!;
    t.diagnostic(`rtt p99 ${summary.rtt.p99} ms, swarm loop p99 ${summary.loop.p99} ms, share ${verdict.share.toFixed(3)}`);
    assert.ok(summary.loop.p99 >= 15, `the stalls show in the loop samples: p99 ${summary.loop.p99} ms`);
    assert.equal(verdict.owner, 'swarm', `share ${verdict.share} is at least ${SWARM_SHARE_FROM}`);
    const row = summaryRow(summary, 'fake', 'r');
    assert.equal(row.rtt_owner, 'swarm');
    assert.equal(row.client_loop_delay_p99_ms, summary.loop.p99);
    assert.match(ownershipLines(summary).join('\n'), /rtt p99 [\d.]+ ms is NOT the server's/);
  });
});
