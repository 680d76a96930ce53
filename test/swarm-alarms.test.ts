/**
 * The swarm's pieces that replaced per-client work: one timer for every sleeping client
 * (clients/swarm/alarms.ts) and fields read from a frame's bytes (clients/swarm/scenarios/raw-fields.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Alarms } from '../clients/swarm/alarms.js';
import { CLOSING_BRACE, COMMA, contains, intAfter } from '../clients/swarm/scenarios/raw-fields.js';

describe('alarms', () => {
  it('wakes every sleeper once, in the order of its moment, never before it, and knows the soonest', async () => {
    const alarms = new Alarms();
    const start = Date.now();
    // Added out of order, with ties, as clients of interleaved rounds fall asleep.
    const offsets = [60, 10, 40, 10, 0, 90, 25, 60, 5, 75];
    const woken: { offset: number; at: number }[] = [];
    const all = Promise.all(offsets.map((offset) => new Promise<void>((resolve, reject) => {
      alarms.add({ at: start + offset, wake: () => { woken.push({ offset, at: Date.now() }); resolve(); }, fail: reject });
    })));
    assert.equal(alarms.size, offsets.length);
    assert.equal(alarms.soonest, start);
    await all;
    assert.deepEqual(woken.map((w) => w.offset), [...offsets].sort((a, b) => a - b));
    for (const w of woken) assert.ok(w.at >= start + w.offset, `woken ${start + w.offset - w.at} ms early`);
    assert.equal(alarms.size, 0);
    assert.equal(alarms.soonest, Infinity);
  });

  it('a sooner sleeper added later re-arms the timer for it', async () => {
    const alarms = new Alarms();
    const order: string[] = [];
    const late = new Promise<void>((resolve, reject) => alarms.add({ at: Date.now() + 200, wake: () => { order.push('late'); resolve(); }, fail: reject }));
    const soon = new Promise<void>((resolve, reject) => alarms.add({ at: Date.now() + 5, wake: () => { order.push('soon'); resolve(); }, fail: reject }));
    await soon;
    assert.deepEqual(order, ['soon']);
    await late;
    assert.deepEqual(order, ['soon', 'late']);
  });

  it('failAll fails every sleeper with the error and wakes none', async () => {
    const alarms = new Alarms();
    const deadline = new Error('deadline');
    const sleepers = [10, 20, 30].map((ms) => new Promise<void>((resolve, reject) => alarms.add({ at: Date.now() + ms, wake: resolve, fail: reject })));
    alarms.failAll(deadline);
    for (const sleeper of sleepers) await assert.rejects(sleeper, (err) => err === deadline);
    assert.equal(alarms.size, 0);
  });
});

describe('raw fields', () => {
  const bytes = (text: string, pad = 0): { data: Buffer; from: number; to: number } => {
    // A frame lies somewhere inside a larger read buffer: bytes around it must not count.
    const data = Buffer.from(`${'"t":9,'.repeat(pad)}${text}"t":7,"b":3}`);
    return { data, from: pad * 6, to: pad * 6 + Buffer.byteLength(text) };
  };
  const T = Buffer.from('"t":');
  const B = Buffer.from('"b":');

  it('reads a whole number after its key when the expected byte follows it', () => {
    const { data, from, to } = bytes('{"event":"message","channel":"c","message":{"t":1796290249452123,"b":12}}', 2);
    assert.equal(intAfter(data, from, to, T, COMMA), 1796290249452123);
    assert.equal(intAfter(data, from, to, B, CLOSING_BRACE), 12);
  });

  it('is NaN without the key, without digits, or with another byte after them, and never reads past the frame', () => {
    for (const text of ['{"message":{"x":1}}', '{"message":{"t":,"b":1}}', '{"message":{"t":12.5,"b":1}}', '{"message":{"t":12}', '{"t":12']) {
      const { data, from, to } = bytes(text, 1);
      assert.ok(Number.isNaN(intAfter(data, from, to, T, COMMA)), text);
    }
    const { data, from, to } = bytes('{"message":{"t":12}}', 1);
    assert.ok(Number.isNaN(intAfter(data, from, to, B, CLOSING_BRACE)), 'the "b": after the frame is not its own');
  });

  it('contains finds a needle only inside the frame', () => {
    const { data, from, to } = bytes('{"c":17,"t":1,"p":""}', 3);
    assert.ok(contains(data, from, to, Buffer.from('{"c":17,')));
    assert.ok(!contains(data, from, to, Buffer.from('"b":3')));
  });
});
