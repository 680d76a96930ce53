/**
 * The swarm against servers that do not speak our contract (clients/swarm/protocols/): `raw` against plain
 * `ws` echo and broadcast servers written here, `socketio` against the Socket.IO peer the benches start
 * (bench/socketio-server.ts). Every count is the server's or follows from the run's own numbers.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { startServerProcess, type ServerProcess } from '../bench/lib/servers.js';
import { Swarm } from '../clients/swarm/swarm.js';

/** A plain ws server on a free port: `echo` sends each frame back, `broadcast` sends each to every client. */
async function plainServer(kind: 'echo' | 'broadcast'): Promise<{ url: string; frames: () => number; closeCodes: number[]; closedCount: (n: number) => Promise<void>; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await new Promise((resolve) => wss.once('listening', resolve));
  let frames = 0;
  const closeCodes: number[] = [];
  const closes = new EventEmitter();
  wss.on('connection', (ws: WebSocket) => {
    ws.on('close', (code) => {
      closeCodes.push(code);
      closes.emit('close');
    });
    ws.on('message', (data, isBinary) => {
      frames++;
      if (kind === 'echo') ws.send(data, { binary: isBinary });
      else for (const client of wss.clients) client.send(data, { binary: isBinary });
    });
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`,
    frames: () => frames,
    closeCodes,
    // The server hears a close a moment after the client has seen its socket closed.
    closedCount: (n) => new Promise<void>((resolve) => {
      const check = (): void => {
        if (closeCodes.length < n) return;
        closes.off('close', check);
        resolve();
      };
      closes.on('close', check);
      check();
    }),
    close: () => new Promise<void>((resolve) => wss.close(() => resolve())),
  };
}

describe('protocol raw: any plain WebSocket server', () => {
  it('runs the echo sequence against a plain echo server: every round trip timed, the client closes with 1000', async () => {
    const server = await plainServer('echo');
    try {
      const summary = await new Swarm({ url: server.url, protocol: 'raw', clients: 60, ramp: 0.3, delay: 0.1, rounds: 3, workers: 2 }).run();
      assert.equal(summary.counters.completed, 60);
      assert.equal(summary.rtt?.count, 180);
      assert.equal(server.frames(), 180, 'the server echoed exactly the frames the swarm timed');
      await server.closedCount(60);
      assert.equal(server.closeCodes.filter((code) => code === 1000).length, 60);
    } finally {
      await server.close();
    }
  });

  it('runs broadcast against a plain relay: every client gets every message, timed by the marker in the payload', async () => {
    const server = await plainServer('broadcast');
    try {
      const summary = await new Swarm({ url: server.url, protocol: 'raw', scenario: 'broadcast', clients: 20, rate: 50, duration: 2, drain: 1, ramp: 0.2, workers: 2 }).run();
      const c = summary.counters;
      assert.equal(c.completed, 20);
      assert.equal(c.published, server.frames());
      assert.ok(c.published >= 95, `about 100 published, got ${c.published}`);
      assert.equal(c.delivered, c.published * 20);
      assert.equal(summary.lostDeliveries, 0);
      assert.equal(c.ownLost, 0);
      assert.equal(summary.rtt?.count, c.published, 'each message timed once, by its publisher');
    } finally {
      await server.close();
    }
  });

  it('with publishers, copies the publishers also get are not counted as deliveries', async () => {
    const server = await plainServer('broadcast');
    try {
      const summary = await new Swarm({ url: server.url, protocol: 'raw', scenario: 'broadcast', clients: 21, publishers: 1, rate: 50, duration: 2, drain: 1, ramp: 0.2, workers: 1 }).run();
      const c = summary.counters;
      assert.equal(c.completed, 21);
      assert.equal(c.delivered, c.published * 20);
      assert.equal(summary.fanout?.count, c.published * 20);
    } finally {
      await server.close();
    }
  });
});

describe('protocol socketio: the Socket.IO peer server', () => {
  let server: ServerProcess;
  before(async () => (server = await startServerProcess('socketio')));
  after(() => server.stop());

  it('runs the echo sequence over Engine.IO and Socket.IO packets', async () => {
    const summary = await new Swarm({ url: server.url, protocol: 'socketio', clients: 60, ramp: 0.3, delay: 0.1, rounds: 3, workers: 2, serverPid: server.pid }).run();
    assert.equal(summary.counters.completed, 60);
    assert.equal(summary.rtt?.count, 180);
    assert.equal(summary.counters.errors.protocol_mismatch, 0);
  });

  it('runs broadcast with a room as the channel: every subscriber gets every message', async () => {
    const summary = await new Swarm({ url: server.url, protocol: 'socketio', scenario: 'broadcast', clients: 30, rate: 60, duration: 2, drain: 1, ramp: 0.2, workers: 2 }).run();
    const c = summary.counters;
    assert.equal(c.completed, 30);
    assert.equal(c.subscribed, 30);
    assert.ok(c.published >= 110, `about 120 published, got ${c.published}`);
    assert.equal(c.delivered, c.published * 30);
    assert.equal(c.ownLost, 0);
  });

  it('refuses the scenarios only our contract has, naming the flag', () => {
    assert.throws(() => new Swarm({ protocol: 'socketio', scenario: 'pubsub' }), /--protocol socketio runs the echo and broadcast scenarios only; pubsub needs our contract/);
    assert.throws(() => new Swarm({ protocol: 'mqtt' as never }), /--protocol must be one of contract, raw, socketio/);
  });
});
