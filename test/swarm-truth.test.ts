/**
 * The swarm measures truly: against servers that do a known thing (delay every echo by 20 ms, drop
 * chosen echoes or deliveries, break the contract), the reported percentiles, losses and error kinds
 * match what the server did.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';
import { Swarm } from '../clients/swarm/swarm.js';
import { totalErrors } from '../clients/swarm/metrics.js';
import { echoServer, lateBroadcastServer, lossyBroadcastServer, rudeServer, type FakeServer } from './helpers/fake-servers.js';
import { startServer } from './helpers/server.js';

const servers: FakeServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});
/** The nearest-rank percentile function of `samples`. */
function nearestRanks(samples: number[]): (pct: number) => number {
  const sorted = [...samples].sort((a, b) => a - b);
  return (pct) => sorted[Math.max(0, Math.ceil((pct / 100) * sorted.length) - 1)]!;
}

async function fake(started: Promise<FakeServer>): Promise<FakeServer> {
  const server = await started;
  servers.push(server);
  return server;
}

describe('the swarm measures truly', () => {
  it('reports the 20 ms that a server adds to every echo', async (t) => {
    const server = await fake(echoServer({ delayMs: 20, rounds: 3 }));
    // The fake server runs on this thread: how late its loop ran is time it added before each hold.
    const serverLoop = monitorEventLoopDelay({ resolution: 1 });
    serverLoop.enable();
    const summary = await new Swarm({ url: `${server.url}/echo`, clients: 50, ramp: 0.2, delay: 0.05, rounds: 3, workers: 1 }).run();
    serverLoop.disable();
    assert.equal(summary.counters.completed, 50);
    const rtt = summary.rtt!;
    assert.equal(rtt.count, 150);
    assert.equal(server.heldMs.length, 150);
    // Node's timers run on the loop's millisecond clock, so the server's 20 ms can be up to 1 ms short.
    assert.ok(rtt.min >= 19, `no echo can come back before the server's 20 ms timer, min ${rtt.min}`);
    // On a busy host the server holds some echoes longer than its timer asks; what the swarm may add on
    // top is loopback (a few ms here) and the delays it reports as its own, plus the server loop's.
    const held = nearestRanks(server.heldMs);
    const notTheServers = serverLoop.max / 1e6 + summary.clientLoopDelayMaxMs;
    const seen = `rtt p50 ${rtt.p50} p99 ${rtt.p99}; server held p50 ${held(50).toFixed(1)} p99 ${held(99).toFixed(1)}; loop delays server ${(serverLoop.max / 1e6).toFixed(1)} swarm ${summary.clientLoopDelayMaxMs.toFixed(1)} ms`;
    t.diagnostic(seen);
    assert.ok(rtt.p50 >= held(50) - 1 && rtt.p50 < held(50) + 5 + notTheServers, `p50 is the server's hold plus loopback: ${seen}`);
    assert.ok(rtt.p99 >= held(99) - 1 && rtt.p99 < held(99) + 20 + notTheServers, `p99 is the server's hold plus loopback: ${seen}`);
  });

  it('counts exactly the echoes a server drops, as timeouts', async () => {
    const server = await fake(echoServer({ delayMs: 0, rounds: 3, dropEvery: 4 }));
    const summary = await new Swarm({ url: `${server.url}/echo`, clients: 40, ramp: 0.2, delay: 0.05, rounds: 3, replyTimeout: 300, workers: 2 }).run();
    assert.equal(server.counts.dropped, 10);
    assert.equal(summary.counters.errors.timeout, 10);
    assert.equal(totalErrors(summary.counters), 10);
    assert.equal(summary.counters.completed, 30);
    assert.equal(summary.rtt?.count, 30 * 3 + 10 * 1, 'the dropped clients timed only their first round');
  });

  it('reports as lost exactly the broadcast deliveries a server skips', async () => {
    const server = await fake(lossyBroadcastServer(7));
    const summary = await new Swarm({ url: `${server.url}/pubsub`, scenario: 'broadcast', clients: 10, ramp: 0.1, rate: 50, duration: 1, drain: 0.5, workers: 2 }).run();
    assert.ok(server.counts.skipped > 0);
    assert.equal(summary.lostDeliveries, server.counts.skipped);
    assert.equal(summary.counters.ownLost, server.counts.skippedOwn ?? 0);
    assert.equal(summary.counters.delivered, summary.counters.published * 10 - server.counts.skipped);
  });

  it('crowd: a broadcast copy later than the drain is late, not lost; one that never comes is lost', async () => {
    // Two broadcasts (due 0.2 s and 0.6 s after the barrier); the drain ends 1.0 s after it.
    const crowd = { scenario: 'crowd' as const, clients: 6, ramp: 0.1, delay: 0.4, rounds: 2, broadcastEvery: 0.4, drain: 0.2, workers: 2 };
    const late = await fake(lateBroadcastServer({ lateFrom: 2, lateMs: 900 }));
    const summary = await new Swarm({ ...crowd, url: `${late.url}/pubsub`, replyTimeout: 5000 }).run();
    assert.equal(late.counts.late, 6);
    assert.equal(summary.counters.completed, 6);
    assert.equal(summary.lostDeliveries, 0);
    assert.equal(summary.counters.delivered, 12);
    assert.ok(summary.fanout!.max >= 900, `the late copies are timed as late: fanout max ${summary.fanout!.max} ms`);

    const skipping = await fake(lateBroadcastServer({ lateFrom: 2, lateMs: 0, skip: true }));
    const started = Date.now();
    const lost = await new Swarm({ ...crowd, url: `${skipping.url}/pubsub`, replyTimeout: 1000 }).run();
    assert.equal(skipping.counts.skipped, 6);
    assert.equal(lost.lostDeliveries, 6);
    assert.equal(lost.counters.completed, 6, 'a lost copy is counted as lost, not as a failed client');
    assert.ok(Date.now() - started >= 1000 + 1000, 'each client waited --reply-timeout past the drain for the last broadcast');
  });

  it('sorts failures by kind: refused, rejected, protocol mismatch, unexpected close', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const refused = await new Swarm({ url: `ws://127.0.0.1:${closedPort}`, clients: 5, ramp: 0, workers: 1 }).run();
    assert.equal(refused.counters.errors.refused, 5);
    assert.equal(refused.counters.failed, 5);

    const ours = await startServer();
    try {
      const rejected = await new Swarm({ url: `${ours.ws}/nowhere`, clients: 3, ramp: 0, workers: 1 }).run();
      assert.equal(rejected.counters.errors.rejected, 3, 'a 404 on the upgrade');
    } finally {
      await ours.close();
    }

    const liar = await fake(rudeServer({ firstFrame: '{"event":"hello"}' }));
    const mismatch = await new Swarm({ url: `${liar.url}/echo`, clients: 4, ramp: 0, workers: 1 }).run();
    assert.equal(mismatch.counters.errors.protocol_mismatch, 4);

    const closer = await fake(rudeServer({ closeCode: 1011 }));
    const closed = await new Swarm({ url: `${closer.url}/echo`, clients: 4, ramp: 0, delay: 1, workers: 1 }).run();
    assert.equal(closed.counters.errors.unexpected_close, 4);
  });

  it('spreads clients over the source addresses it is given', async () => {
    const server = await fake(echoServer({ delayMs: 0, rounds: 1 }));
    const sourceAddresses = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
    const summary = await new Swarm({ url: `${server.url}/echo`, clients: 30, ramp: 0.1, delay: 0, rounds: 1, sourceAddresses, workers: 2 }).run();
    assert.equal(summary.counters.completed, 30);
    assert.deepEqual(server.counts, { 'from 127.0.0.2': 10, 'from 127.0.0.3': 10, 'from 127.0.0.4': 10 });
  });

  it('stops by itself at --timeout and counts the unfinished clients as deadline', async () => {
    const server = await fake(echoServer({ delayMs: 0, rounds: 3 }));
    const started = Date.now();
    const summary = await new Swarm({ url: `${server.url}/echo`, clients: 20, ramp: 0, delay: 30, rounds: 3, timeout: 1, workers: 2 }).run();
    assert.ok(Date.now() - started < 5000, 'the run ended soon after its timeout');
    assert.equal(summary.counters.errors.deadline, 20);
    assert.equal(summary.counters.completed, 0);
    assert.equal(summary.counters.connected, 0, 'every socket was closed');
  });
});
