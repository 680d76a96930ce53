/**
 * Slow consumers always get goodbye: a client that stops reading is closed with goodbye
 * `slow_consumer` and 1008 once the server holds more than --max-backpressure for it, whether what
 * piles up is published messages (at 3,000 and 30,000 msg/s) or replies to its own requests, and the
 * server's memory stays bounded by the limits.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { spawnServer, type ServerChild } from './helpers/process.js';
import { RawSocket } from './helpers/raw.js';

const MIB = 1024 * 1024;

async function stats(server: ServerChild): Promise<Record<string, any>> {
  return (await fetch(`${server.http}/stats`)).json() as Promise<Record<string, any>>;
}

/** Server memory in three parts, as /stats tells them. */
interface Memory {
  rss: number;
  /** RSS less what V8 holds for its heap: uWS's per-socket backlogs live here. */
  native: number;
  /** V8's young generation, which grows by itself under a high allocation rate, up to V8's own maximum. */
  young: number;
  /** The rest of the JS heap: whatever the server keeps. */
  old: number;
}

function memoryOf(s: Record<string, any>): Memory {
  const m = s.memory;
  return { rss: m.rss, native: m.rss - m.heap_total, young: m.new_space, old: m.heap_total - m.new_space };
}

/** Polls /stats until `check` holds; returns the largest server memory seen meanwhile. */
async function watch(server: ServerChild, check: (s: Record<string, any>) => boolean, timeoutMs: number): Promise<Memory> {
  const deadline = Date.now() + timeoutMs;
  const peak: Memory = { rss: 0, native: 0, young: 0, old: 0 };
  for (;;) {
    const s = await stats(server);
    const now = memoryOf(s);
    for (const key of Object.keys(peak) as (keyof Memory)[]) peak[key] = Math.max(peak[key], now[key]);
    if (check(s)) return peak;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms; stats: ${JSON.stringify(s)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Resumes reading and checks that the last frames are goodbye slow_consumer and close 1008; returns how many text frames it read. */
async function assertGoodbye(socket: RawSocket, who: string): Promise<number> {
  socket.resumeReading();
  const { frames, closeCode } = await socket.readUntilClose(15_000);
  const texts = frames.filter((f) => f.opcode === 0x1);
  assert.equal(closeCode, 1008, `${who}: close code`);
  assert.deepEqual(JSON.parse(texts.at(-1)!.payload.toString()), { event: 'goodbye', reason: 'slow_consumer' }, `${who}: last text frame`);
  socket.destroy();
  return texts.length;
}

async function subscribeRaw(server: ServerChild, channel: string): Promise<RawSocket> {
  const socket = await RawSocket.open(server.port, '/pubsub');
  assert.equal((await socket.nextJson()).event, 'welcome');
  socket.sendText(JSON.stringify({ action: 'subscribe', payload: { channel } }));
  assert.equal((await socket.nextJson()).event, 'subscribed');
  return socket;
}

for (const rate of [3000, 30_000]) {
  describe(`8 slow consumers at ${rate} msg/s of 1 KB`, () => {
    it('all get goodbye + 1008, healthy subscribers keep everything, RSS stays bounded', async (t) => {
      const server = await spawnServer(['--max-backpressure', String(MIB)]);
      try {
        const slow = await Promise.all(Array.from({ length: 8 }, () => subscribeRaw(server, 'feed')));
        const healthy = await Promise.all(
          Array.from({ length: 2 }, async () => {
            const ws = new WebSocket(`${server.ws}/pubsub`);
            let count = 0;
            // Listening before 'open': the welcome can come in the same read as the upgrade's answer.
            ws.on('message', (data: Buffer) => {
              if (data.includes('"event":"message"')) count++;
              else if (data.includes('"event":"welcome"')) ws.send(JSON.stringify({ action: 'subscribe', payload: { channel: 'feed' }, id: 1 }));
            });
            await once(ws, 'open');
            return { ws, received: () => count };
          }),
        );
        await watch(server, (s) => s.subscriptions === 10, 5000);
        for (const s of slow) s.pauseReading();
        const before = memoryOf(await stats(server));
        const publisher = new WebSocket(`${server.ws}/pubsub`);
        await once(publisher, 'open');
        const message = JSON.stringify({ action: 'publish', payload: { channel: 'feed', message: 'x'.repeat(1000) } });
        let sent = 0;
        const started = Date.now();
        // Paced every 5 ms to the rate, for at most 30 s, until all 8 are closed.
        const timer = setInterval(() => {
          const due = Math.floor(((Date.now() - started) / 1000) * rate);
          for (; sent < due; sent++) publisher.send(message);
        }, 5);
        let peak: Memory;
        try {
          peak = await watch(server, (s) => s.slow_consumers === 8, 30_000);
        } finally {
          clearInterval(timer);
        }
        const total = sent;
        const got: number[] = [];
        for (const [i, s] of slow.entries()) got.push(await assertGoodbye(s, `slow consumer ${i}`));
        // What the kernel's buffers held besides the server's backlog: most of each one's frames.
        t.diagnostic(`frames each slow consumer read after resuming: ${got.join(' ')}`);
        // Bounded by the limits, whatever the volume. Each slow consumer's backlog reached at most the
        // limit, a sweep budget (a quarter) and a frame before it was closed. uWS keeps a backlog in one
        // std::string, which grows by doubling: the blocks it grew out of add up to its size again, and
        // the allocator may keep them resident, so a backlog costs up to twice its size. The 2 healthy
        // subscribers may lag up to the limit as well (they were not closed, so each stayed within one
        // backlog), and theirs grow the same way. Nothing per message stays on the JS heap beyond a
        // turn (old generation); the young generation grows by itself under this allocation rate up to
        // V8's maximum and is reported, not judged.
        const backlog = MIB + MIB / 4 + 2048;
        // uWS 20.57 reads a connection again at once after every full 512 KB read, so a publisher that
        // keeps the server busy is read in one loop iteration, and uWS keeps a copy of every message
        // published in an iteration until the iteration ends, up to 65,535 (the cap of its TopicTree;
        // docs/protocol.md, Deviations): each a std::string of the frame, plus its heap block's header
        // and rounding and its slot in the TopicTree's vector (64 bytes at most). 20.30 reads at most
        // 512 KB of a connection per iteration, so it keeps at most the messages of one such read.
        const frameBytes = JSON.stringify({ event: 'message', channel: 'feed', message: 'x'.repeat(1000) }).length;
        const { engine } = await stats(server);
        const copiesPerIteration = engine.version.startsWith('20.30.') ? Math.ceil((512 * 1024) / message.length) : 65_535;
        const iterationCopies = copiesPerIteration * (frameBytes + 64);
        const nativeBound = (8 + 2) * 2 * backlog + iterationCopies;
        const oldBound = 4 * MIB;
        const mib = (n: number): string => (n / MIB).toFixed(1);
        const grew = (key: keyof Memory): number => peak[key] - before[key];
        t.diagnostic(
          `${total} messages; server RSS ${mib(before.rss)} -> peak ${mib(peak.rss)} MiB (+${mib(grew('rss'))}): ` +
            `native +${mib(grew('native'))} (bound ${mib(nativeBound)}), old generation +${mib(grew('old'))} (bound ${mib(oldBound)}), ` +
            `young generation ${mib(before.young)} -> ${mib(peak.young)}`,
        );
        assert.ok(grew('native') < nativeBound, `native memory grew ${mib(grew('native'))} MiB, bound ${mib(nativeBound)} MiB`);
        assert.ok(grew('old') < oldBound, `the old generation grew ${mib(grew('old'))} MiB, bound ${mib(oldBound)} MiB`);
        // The healthy subscribers got every message published.
        const deadline = Date.now() + 10_000;
        while (healthy.some((h) => h.received() < total) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        for (const h of healthy) assert.equal(h.received(), total, 'a healthy subscriber got every message');
        const after = await stats(server);
        assert.equal(after.slow_consumers, 8);
        assert.equal(after.dropped, 0);
        publisher.close();
        for (const h of healthy) h.ws.close();
      } finally {
        await server.kill();
      }
    });
  });
}

describe('a client that sends requests and reads no replies', () => {
  it('is closed as a slow consumer (goodbye + 1008) instead of losing its replies silently', async () => {
    const server = await spawnServer(['--max-backpressure', '1024', '--max-payload', '512']);
    try {
      const socket = await RawSocket.open(server.port, '/pubsub');
      assert.equal((await socket.nextJson()).event, 'welcome');
      socket.pauseReading();
      // 60,000 subscribes to a 200-character channel: ~14 MB of acks, more than the kernel buffers hold.
      const frame = Buffer.from(JSON.stringify({ action: 'subscribe', payload: { channel: 'c'.repeat(200) } }));
      const { frame: encode } = await import('./helpers/raw.js');
      const one = encode(0x1, frame);
      for (let i = 0; i < 60; i++) {
        if (socket.socket.destroyed) break;
        const ok = socket.socket.write(Buffer.concat(Array.from({ length: 1000 }, () => one)));
        if (!ok) await Promise.race([once(socket.socket, 'drain'), socket.gone]);
      }
      await watch(server, (s) => s.slow_consumers === 1, 20_000);
      await assertGoodbye(socket, 'the client');
      const after = await stats(server);
      assert.equal(after.dropped, 0, 'no reply was dropped without closing');
      assert.equal(after.connections, 0);
    } finally {
      await server.kill();
    }
  });
});

describe('a slow consumer that comes back late', () => {
  it('reads its goodbye and 1008 when it resumes 15 s after the cut, and is sent nothing more meanwhile', async () => {
    const server = await spawnServer([]);
    const { openSlowConsumer } = await import('../clients/subscribers/slow-consumer.js');
    try {
      const slow = await Promise.all(Array.from({ length: 4 }, () => openSlowConsumer(server.ws, 'feed')));
      const publisher = new WebSocket(`${server.ws}/pubsub`);
      await once(publisher, 'open');
      const body = 'x'.repeat(1000);
      const flood = setInterval(() => {
        for (let i = 0; i < 50; i++) publisher.send(JSON.stringify({ action: 'publish', payload: { channel: 'feed', message: body } }));
      }, 10);
      try {
        await watch(server, (s) => s.slow_consumers === 4, 30_000);
      } finally {
        clearInterval(flood);
      }
      const cut = await stats(server);
      assert.equal(cut.subscriptions, 0, 'the cut consumers are off their channel at once');
      // uWS's close timeout after an end is 16 s at the default --idle-timeout: past it a socket ended at the cut was reset.
      await new Promise((resolve) => setTimeout(resolve, 15_000));
      const ends = await Promise.all(slow.map((s) => s.resume(20_000)));
      assert.deepEqual(ends.map((e) => [e.code, e.last]), ends.map(() => [1008, { event: 'goodbye', reason: 'slow_consumer' }]));
      publisher.close();
      await watch(server, (s) => s.connections === 0, 5000);
    } finally {
      await server.kill();
    }
  });
});
