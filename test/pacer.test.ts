/**
 * The swarm's pacer: never wakes a client early, wakes clients in the order of their moments, is not
 * held up by a timer it set for a later moment, and fails every waiter when the run stops. How close
 * to its moment a client wakes is a benchmark figure (bench-redis), not asserted here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { epochMicros } from '../clients/swarm/metrics.js';
import { Pacer } from '../clients/swarm/pacer.js';

describe('pacer', () => {
  it('wakes each waiter at or after its moment, in the order of the moments', async () => {
    const pacer = new Pacer();
    const start = epochMicros();
    // Moments out of order, some close together (sub-millisecond), some past the timer's threshold.
    const offsets = [30_000, 500, 8_000, 150, 2_500, 0, 650, 30_000, 12_000, 400];
    const woken: { at: number; now: number }[] = [];
    await Promise.all(
      offsets.map(async (offset) => {
        const at = start + offset;
        await pacer.until(at);
        woken.push({ at, now: epochMicros() });
      }),
    );
    assert.equal(woken.length, offsets.length);
    for (const { at, now } of woken) assert.ok(now >= at, `woke ${(at - now).toFixed(0)} µs early`);
    const order = woken.map((w) => w.at);
    assert.deepEqual(order, [...order].sort((a, b) => a - b));
    assert.equal(pacer.waiting, 0);
  });

  it('a moment that has passed resolves at once', async () => {
    const pacer = new Pacer();
    const before = performance.now();
    await pacer.until(epochMicros() - 5_000_000);
    assert.ok(performance.now() - before < 1000);
  });

  it('an earlier waiter is not held up by the timer set for a later one', async () => {
    const pacer = new Pacer();
    const late = pacer.until(epochMicros() + 5_000_000);
    await new Promise((resolve) => setTimeout(resolve, 10));
    const before = performance.now();
    await pacer.until(epochMicros() + 20_000);
    const waited = performance.now() - before;
    // 20 ms asked; the 5 s timer must not be what wakes it.
    assert.ok(waited >= 20 && waited < 2_000, `waited ${waited.toFixed(1)} ms`);
    pacer.stop(new Error('done'));
    await assert.rejects(late, /done/);
  });

  it('stop fails every waiter and every later call with its error', async () => {
    const pacer = new Pacer();
    const waits = [1, 1_000, 60_000_000].map((offset) => pacer.until(epochMicros() + offset));
    pacer.stop(new Error('deadline'));
    for (const wait of waits) await assert.rejects(wait, /deadline/);
    await assert.rejects(pacer.until(epochMicros() + 10), /deadline/);
    assert.equal(pacer.waiting, 0);
  });
});
