/**
 * Two honesty defects of the swarm's output, kept fixed: a reply that is not the echo (a goodbye in
 * place of a dropped echo) is an error and never a timed round trip; and a memory-per-connection fit
 * that means nothing (RSS fell, or too short a ramp) is N/A, never a negative number of bytes.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Swarm } from '../clients/swarm/swarm.js';
import { fitMemoryPerConnection } from '../clients/swarm/memory-fit.js';
import { echoServer, type FakeServer } from './helpers/fake-servers.js';

describe('the swarm times only what it should', () => {
  const servers: FakeServer[] = [];
  after(() => Promise.all(servers.map((s) => s.close())));

  it('a goodbye in place of an echo is an error, not a round trip', async () => {
    const server = await echoServer({ delayMs: 0, rounds: 3, dropEvery: 4, goodbyeInstead: true });
    servers.push(server);
    const summary = await new Swarm({ url: `${server.url}/echo`, clients: 40, ramp: 0.2, delay: 0.05, rounds: 3, replyTimeout: 2000, workers: 2 }).run();
    assert.equal(server.counts.dropped, 10);
    assert.equal(summary.counters.errors.protocol_mismatch, 10);
    assert.equal(summary.counters.completed, 30);
    assert.equal(summary.rtt?.count, 30 * 3 + 10 * 1, 'the 10 clients timed their first round only, not the goodbye');
  });
});

describe('memory per connection', () => {
  const ramp = (perConnection: number, start = 80 * 2 ** 20) => Array.from({ length: 10 }, (_, i) => [(i + 1) * 1000, start + (i + 1) * 1000 * perConnection] as const);

  it('is the slope of RSS over the connections of the ramp', () => {
    assert.deepEqual(fitMemoryPerConnection(ramp(1500), 10_000), { bytesPerConnection: 1500, baseBytes: 80 * 2 ** 20, why: null }, 'the base is the RSS at no connection');
  });

  it('is N/A, saying why, when RSS fell during the ramp or the ramp was too short', () => {
    assert.deepEqual(fitMemoryPerConnection(ramp(-8090), 10_000), { bytesPerConnection: null, baseBytes: null, why: 'RSS did not grow with the connections during the ramp' });
    assert.deepEqual(fitMemoryPerConnection(ramp(1500).slice(0, 4), 10_000), { bytesPerConnection: null, baseBytes: null, why: 'ramp too short to fit' });
    assert.deepEqual(fitMemoryPerConnection(ramp(1500), 100_000), { bytesPerConnection: null, baseBytes: null, why: 'ramp too short to fit' }, 'a tenth of the peak');
  });
});
