/**
 * Shutdown loses nothing it accepted: an ack (`published`) means delivered to every subscriber that
 * was connected, also when SIGTERM comes mid-stream, and across instances on Redis during a rolling
 * restart.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { spawnServer } from './helpers/process.js';
import { onFreePort } from './helpers/ports.js';
import { eventually } from './helpers/server.js';
import { REDIS_URL, requireRedis } from './helpers/services.js';

/** A subscriber that records the `n` of every message, and how its connection ended. */
interface Subscriber {
  ws: WebSocket;
  received: number[];
  goodbye: string | null;
  closed: Promise<number>;
}

async function subscriber(base: string, channel: string): Promise<Subscriber> {
  const ws = new WebSocket(`${base}/pubsub`);
  const sub: Subscriber = { ws, received: [], goodbye: null, closed: new Promise((resolve) => ws.once('close', (code) => resolve(code))) };
  const subscribed = new Promise<void>((resolve, reject) => {
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data));
      if (frame.event === 'welcome') ws.send(JSON.stringify({ action: 'subscribe', payload: { channel } }));
      else if (frame.event === 'subscribed') resolve();
      else if (frame.event === 'message') sub.received.push(frame.message.n);
      else if (frame.event === 'goodbye') sub.goodbye = frame.reason;
    });
    ws.once('error', reject);
  });
  await subscribed;
  return sub;
}

/**
 * A publisher that sends `{n}` with id n, `perTick` every millisecond-ish, until stopped or said
 * goodbye to; records the acked ns and the ns refused as `shutting_down`.
 */
async function publisher(base: string, channel: string, perTick = 3) {
  const ws = new WebSocket(`${base}/pubsub`);
  await once(ws, 'open');
  const acked: number[] = [];
  const refused: number[] = [];
  let goodbye = false;
  let n = 0;
  ws.on('message', (data) => {
    const frame = JSON.parse(String(data));
    if (frame.event === 'published') acked.push(frame.id);
    else if (frame.event === 'error' && frame.code === 'shutting_down') refused.push(frame.id);
    else if (frame.event === 'goodbye') goodbye = true;
    else if (frame.event === 'error') throw new Error(`unexpected error frame ${String(data)}`);
  });
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  const timer = setInterval(() => {
    if (goodbye || ws.readyState !== WebSocket.OPEN) return clearInterval(timer);
    for (let i = 0; i < perTick; i++) {
      n++;
      ws.send(JSON.stringify({ action: 'publish', payload: { channel, message: { n } }, id: n }));
    }
  }, 1);
  return {
    acked,
    refused,
    closed,
    sent: () => n,
    goodbye: () => goodbye,
    stop: () => clearInterval(timer),
    close: () => ws.close(),
  };
}

function assertGotEveryAck(sub: Subscriber, acked: number[], who: string): void {
  const got = new Set(sub.received);
  const missing = acked.filter((n) => !got.has(n));
  assert.deepEqual(missing.slice(0, 10), [], `${who} misses ${missing.length} acked messages`);
  for (let i = 1; i < sub.received.length; i++) assert.ok(sub.received[i] > sub.received[i - 1], `${who}: in order, once`);
}

describe('shutdown', () => {
  it('SIGTERM mid-stream: every acked publish reaches all 1,000 subscribers, then goodbye + 1001, exit 0', async () => {
    const server = await spawnServer(['--shutdown-timeout', '5000']);
    try {
      const subs: Subscriber[] = [];
      for (let i = 0; i < 1000; i += 100) subs.push(...(await Promise.all(Array.from({ length: 100 }, () => subscriber(server.ws, 'feed')))));
      const pub = await publisher(server.ws, 'feed');
      await eventually(() => pub.acked.length >= 300, 10_000);
      const signalled = Date.now();
      server.child.kill('SIGTERM');
      const code = await server.exited;
      const tookMs = Date.now() - signalled;
      assert.equal(code, 0);
      assert.ok(tookMs < 5000, `exited within --shutdown-timeout (${tookMs} ms)`);
      assert.equal(await pub.closed, 1001);
      assert.ok(pub.goodbye(), 'the publisher got goodbye');
      pub.stop();
      const codes = await Promise.all(subs.map((s) => s.closed));
      assert.ok(codes.every((c) => c === 1001), 'every subscriber closed with 1001');
      assert.ok(subs.every((s) => s.goodbye === 'shutdown'), 'every subscriber got goodbye');
      for (const [i, sub] of subs.entries()) assertGotEveryAck(sub, pub.acked, `subscriber ${i}`);
      // What was not acked was either refused or never answered: no ack is ever given for a publish that is dropped.
      assert.ok(pub.acked.length + pub.refused.length <= pub.sent());
    } finally {
      await server.kill();
    }
  });

  it('a rolling restart on Redis loses no connection of the other instance and no acked message', async () => {
    await requireRedis();
    const prefix = `roll${randomBytes(4).toString('hex')}`;
    const args = ['--redis', REDIS_URL, '--prefix', prefix, '--shutdown-timeout', '5000'];
    // A's port lies below the ephemeral range, so no client socket can take it while A is down.
    const a = await onFreePort((port) => spawnServer([...args, '--port', String(port)]));
    const b = await spawnServer(args);
    try {
      const onA = await Promise.all(Array.from({ length: 20 }, () => subscriber(a.ws, 'feed')));
      const onB = await Promise.all(Array.from({ length: 20 }, () => subscriber(b.ws, 'feed')));
      const fromA = await publisher(a.ws, 'feed', 1);
      await eventually(() => fromA.acked.length >= 200, 10_000);
      a.child.kill('SIGTERM');
      assert.equal(await a.exited, 0);
      fromA.stop();
      await Promise.all(onA.map((s) => s.closed));
      assert.ok(onA.every((s) => s.goodbye === 'shutdown'));
      // Every message A acked reached the subscribers of both instances.
      for (const [i, sub] of [...onA, ...onB].entries()) assertGotEveryAck(sub, fromA.acked, `subscriber ${i}`);
      // B's clients never noticed: still open, and still served once A is back on its port.
      assert.ok(onB.every((s) => s.ws.readyState === WebSocket.OPEN));
      const again = await spawnServer([...args, '--port', String(a.port)]);
      try {
        const late = await subscriber(again.ws, 'feed');
        const fromB = await publisher(b.ws, 'feed', 1);
        await eventually(() => fromB.acked.length >= 50 && late.received.length >= 50, 10_000);
        fromB.stop();
        await eventually(() => onB.every((s) => s.received.length >= fromA.acked.length + 50), 10_000);
        assert.ok(onB.every((s) => s.ws.readyState === WebSocket.OPEN));
        fromB.close();
        late.ws.close();
      } finally {
        await again.kill();
      }
      for (const s of onB) s.ws.close();
      await Promise.all(onB.map((s) => s.closed));
    } finally {
      await Promise.all([a.kill(), b.kill()]);
    }
  });
});
