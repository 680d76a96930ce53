/**
 * Small, fast versions of each swarm scenario against the real server (in this process, port 0), with
 * worker processes, CSVs written, and no connection left on the server afterwards.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Swarm } from '../clients/swarm/swarm.js';
import { totalErrors } from '../clients/swarm/metrics.js';
import { attachCsv } from '../clients/swarm/output/csv.js';
import { eventually, startServer, type RunningServer } from './helpers/server.js';

let server: RunningServer;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.close();
});

async function assertNoLeftovers(): Promise<void> {
  await eventually(async () => {
    const stats = await server.stats();
    return stats.connections === 0 && stats.subscriptions === 0;
  });
}

describe('swarm scenarios against the server', () => {
  it('echo: 200 clients over 2 workers complete the sequence, and the CSVs hold the run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarm-'));
    const swarm = new Swarm({ url: server.ws, scenario: 'echo', clients: 200, ramp: 0.5, delay: 0.8, rounds: 2, workers: 2, serverPid: process.pid });
    const peaks: number[] = [];
    swarm.on('peak', ({ connected }: { connected: number }) => peaks.push(connected));
    const paths = attachCsv(swarm, { dir, name: 'echo-test', label: 'ours' });
    const summary = await swarm.run();

    assert.equal(summary.counters.completed, 200);
    assert.equal(totalErrors(summary.counters), 0);
    assert.equal(summary.connect?.count, 200);
    assert.equal(summary.rtt?.count, 400);
    assert.equal(summary.counters.sent, 400);
    assert.equal(summary.counters.received, 200 * (1 + 2 + 1), 'welcome, two echoes, goodbye per client');
    assert.deepEqual(peaks, [200], 'every client is connected from 0.5 s until its first round at 0.8 s or later');
    assert.equal(summary.peakConnected, 200);
    assert.ok(summary.server && summary.server.rssPeakBytes > 0, 'the server process was sampled');

    const [header, row] = readFileSync(paths.summary, 'utf8').trim().split('\n').map((line) => line.split(','));
    const cell = (name: string): string => row[header.indexOf(name)];
    for (const column of ['clients', 'completed', 'err_refused', 'err_timeout', 'connect_p99_ms', 'rtt_p50_ms', 'rtt_p999_ms', 'peak_connected', 'server_bytes_per_conn', 'duration_s']) {
      assert.ok(header.includes(column), `summary has ${column}`);
    }
    assert.equal(cell('clients'), '200');
    assert.equal(cell('completed'), '200');
    assert.equal(cell('peak_connected'), '200');
    assert.equal(Number(cell('rtt_p50_ms')), summary.rtt?.p50);

    const timeline = readFileSync(paths.timeline, 'utf8').trim().split('\n');
    assert.match(timeline[0], /^second,connected,opening,failed,closed,completed,sent,received,received_per_s,rtt_p50_ms,rtt_p99_ms/);
    assert.ok(timeline.length >= 2, 'a row per second');
    assert.equal(timeline.at(-1)!.split(',')[5], '200', 'the last row counts every completed client');
    const history = readFileSync(paths.history!, 'utf8').trim().split('\n');
    assert.equal(history.length, 2);
    assert.equal(history[0], header.join(','));
    await assertNoLeftovers();
  });

  it('slow: 30 clients x 3 requests of 300 ms are answered together, each reply timed', async () => {
    const summary = await new Swarm({ url: server.ws, scenario: 'slow', clients: 30, ramp: 0.2, slowMs: 300, requests: 3, workers: 1 }).run();
    assert.equal(summary.counters.completed, 30);
    assert.equal(summary.samples.length, 90);
    assert.equal(summary.slow?.count, 90);
    for (const sample of summary.samples) {
      assert.ok(sample.ms >= 300 && sample.ms < 500, `reply ${sample.client}/${sample.request} after ${sample.ms} ms`);
    }
    assert.deepEqual(new Set(summary.samples.map((s) => s.request)), new Set([1, 2, 3]));
    await assertNoLeftovers();
  });

  it('broadcast: every message reaches every subscriber, none lost', async () => {
    const summary = await new Swarm({ url: server.ws, scenario: 'broadcast', clients: 20, ramp: 0.1, rate: 100, duration: 1, drain: 0.5, workers: 2 }).run();
    const c = summary.counters;
    assert.equal(c.completed, 20);
    assert.equal(c.subscribed, 20);
    assert.ok(c.published >= 95 && c.published <= 100, `published ${c.published} at 100/s for 1 s`);
    assert.equal(summary.expectedDeliveries, c.published * 20);
    assert.equal(c.delivered, c.published * 20);
    assert.equal(summary.lostDeliveries, 0);
    assert.equal(c.ownLost, 0);
    assert.equal(summary.rtt?.count, c.published, 'each publisher timed each of its own messages');
    await assertNoLeftovers();
  });

  it('broadcast with --publishers: publishers only publish, subscribers time every copy after the warm-up', async () => {
    const summary = await new Swarm({
      url: server.ws, scenario: 'broadcast', clients: 12, publishers: 2, warmup: 0.5, ramp: 0.1, rate: 200, duration: 1, drain: 0.5, workers: 2,
    }).run();
    const c = summary.counters;
    assert.equal(totalErrors(c), 0);
    assert.equal(c.completed, 12);
    assert.equal(c.subscribed, 10, 'the 2 publishers do not subscribe');
    assert.equal(c.published, 200, 'one message due every 5 ms for 1 s, the 2 publishers in turn');
    assert.equal(c.delivered, 200 * 10);
    assert.equal(summary.lostDeliveries, 0);
    assert.equal(summary.rtt, null, 'no publisher gets its own messages back');
    assert.equal(summary.fanout?.count, 100 * 10, 'the 100 messages due in the first 0.5 s are delivered but not timed');
    assert.equal(summary.lag?.count, 100, 'each timed message\'s send is timed once, by its publisher');
    assert.ok(summary.lag!.p50 <= summary.fanout!.p50, 'every copy arrives after its message was sent, so fanout dominates lag');
    await assertNoLeftovers();
  });

  it('crowd: all connected at once, every echo answered, every broadcast delivered to every client once', async () => {
    const clients = 60;
    const summary = await new Swarm({
      url: server.ws, scenario: 'crowd', clients, ramp: 0.3, delay: 0.4, rounds: 3, broadcastEvery: 0.3, drain: 0.5,
      workers: 2, sourceAddresses: ['127.0.0.2', '127.0.0.3'],
    }).run();
    const c = summary.counters;
    assert.equal(totalErrors(c), 0);
    assert.equal(c.completed, clients);
    assert.equal(summary.peakConnected, clients);
    assert.equal(c.subscribed, clients);
    assert.equal(c.published, 4, 'client 0 published floor(3 x 0.4 / 0.3) broadcasts');
    assert.equal(c.delivered, 4 * clients);
    assert.equal(summary.lostDeliveries, 0);
    assert.equal(summary.rtt?.count, clients * 3, 'one ping round trip per client and round');
    assert.equal(summary.fanout?.count, 4 * clients, 'each copy timed from its due moment');
    await assertNoLeftovers();
  });

  it('pubsub: publish/ack round trips on several channels', async () => {
    const summary = await new Swarm({ url: server.ws, scenario: 'pubsub', clients: 50, channels: 5, ramp: 0.2, delay: 0.1, rounds: 2, workers: 1 }).run();
    assert.equal(summary.counters.completed, 50);
    assert.equal(summary.counters.published, 100);
    assert.equal(summary.rtt?.count, 100);
    assert.ok(summary.counters.delivered >= 100, 'each client saw at least its own messages');
    await assertNoLeftovers();
  });
});
