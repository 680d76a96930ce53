/**
 * One contract, every driver: the ClientSocket guarantees stated in clients/swarm/sockets/types.ts, run
 * alike against the `libuv` driver (Node's TCP handle alone) and the `net` driver (net.Socket), on real
 * loopback sockets to a plain TCP server of the test's own that records what arrives.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { libuvSockets } from '../clients/swarm/sockets/libuv-socket.js';
import { openSocket } from '../clients/swarm/sockets/open.js';
import { CLIENT_SOCKET_DRIVERS, type ClientSocket, type SocketError, type SocketOwner } from '../clients/swarm/sockets/types.js';

/** An owner that records its events in order, the bytes it read, and can act inside an event. */
class Recorder implements SocketOwner {
  readonly events: string[] = [];
  readonly errors: SocketError[] = [];
  bytes = '';
  onConnected: (() => void) | null = null;
  private closedWaiters: (() => void)[] = [];
  private connectedWaiters: (() => void)[] = [];
  private readWaiters: (() => void)[] = [];

  socketConnected(): void {
    this.events.push('connected');
    this.onConnected?.();
    for (const wake of this.connectedWaiters.splice(0)) wake();
  }

  socketRead(data: Buffer, length: number): void {
    this.events.push('read');
    this.bytes += data.toString('latin1', 0, length);
    for (const wake of this.readWaiters.splice(0)) wake();
  }

  socketFailed(err: SocketError): void {
    this.events.push(`failed ${err.code}`);
    this.errors.push(err);
  }

  socketClosed(): void {
    this.events.push('closed');
    for (const wake of this.closedWaiters.splice(0)) wake();
  }

  connected(): Promise<void> {
    return this.events.includes('connected') ? Promise.resolve() : new Promise((resolve) => this.connectedWaiters.push(resolve));
  }

  closed(): Promise<void> {
    return this.events.includes('closed') ? Promise.resolve() : new Promise((resolve) => this.closedWaiters.push(resolve));
  }

  async read(text: string): Promise<void> {
    while (!this.bytes.includes(text)) await new Promise<void>((resolve) => this.readWaiters.push(resolve));
  }
}

/** The server's side of each accepted connection, in order, with what it received. */
interface Peer {
  socket: Socket;
  received: string;
  /** Reads (data events) as the server saw them. */
  reads: number;
  ended: Promise<unknown>;
}

const listen = async (server: Server): Promise<number> => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
};

describe('the libuv driver is there to test', () => {
  it('loads on this Node (20, 22 and 24 have the bindings it uses)', () => {
    assert.equal(libuvSockets, true);
  });
});

for (const driver of CLIENT_SOCKET_DRIVERS) {
  describe(`client socket contract (${driver})`, () => {
    let server: Server;
    let port: number;
    const peers: Peer[] = [];
    const accepted: ((peer: Peer) => void)[] = [];

    before(async () => {
      server = createServer((socket) => {
        const peer: Peer = { socket, received: '', reads: 0, ended: once(socket, 'close') };
        socket.on('data', (chunk) => {
          peer.received += chunk.toString('latin1');
          peer.reads++;
        });
        socket.on('error', () => undefined);
        peers.push(peer);
        accepted.shift()?.(peer);
      });
      port = await listen(server);
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const nextPeer = (): Promise<Peer> => new Promise((resolve) => accepted.push(resolve));
    const open = (owner: SocketOwner, local?: { localAddress?: string; localPort?: number }): ClientSocket =>
      openSocket(driver, { host: '127.0.0.1', port, tls: false, ...local }, owner);
    /** Opens a socket for `owner` and waits until both it and the server's side are connected. */
    const openConnected = async (owner: Recorder, local?: { localAddress?: string; localPort?: number }): Promise<{ socket: ClientSocket; peer: Peer }> => {
      const peerAccepted = nextPeer();
      const socket = open(owner, local);
      await owner.connected();
      return { socket, peer: await peerAccepted };
    };

    it('calls nothing before openSocket returns; connected, reads in order, and one close after the peer ends', async () => {
      const owner = new Recorder();
      const peerAccepted = nextPeer();
      const socket = open(owner);
      assert.deepEqual(owner.events, [], 'no event during openSocket');
      await owner.connected();
      const peer = await peerAccepted;
      socket.write('hello ');
      socket.write(Buffer.from('world'));
      for (let i = 0; i < 50; i++) peer.socket.write(`<${i}>`);
      await owner.read('<49>');
      assert.equal(owner.bytes, Array.from({ length: 50 }, (_, i) => `<${i}>`).join(''), 'every byte, in order');
      peer.socket.end();
      await owner.closed();
      assert.equal(owner.events[0], 'connected');
      assert.equal(owner.events.at(-1), 'closed');
      assert.equal(owner.events.filter((e) => e === 'closed').length, 1);
      assert.ok(owner.events.slice(1, -1).every((e) => e === 'read'), `only reads between: ${owner.events.join(', ')}`);
      await peer.ended;
      assert.equal(peer.received, 'hello world');
    });

    it('hands over bytes that are valid during the call only, from a buffer that may be shared', async () => {
      const a = new Recorder();
      const b = new Recorder();
      const peersAccepted = [nextPeer(), nextPeer()];
      const sockets = [open(a), open(b)];
      await Promise.all([a.connected(), b.connected()]);
      const [pa, pb] = await Promise.all(peersAccepted);
      // Large reads on both, interleaved: each owner copied its bytes before the other's read.
      const big = (c: string): string => c.repeat(100_000);
      pa.socket.write(big('a'));
      pb.socket.write(big('b'));
      await Promise.all([a.read(big('a')), b.read(big('b'))]);
      assert.equal(a.bytes, big('a'));
      assert.equal(b.bytes, big('b'));
      for (const socket of sockets) socket.destroy();
      await Promise.all([a.closed(), b.closed()]);
    });

    it('sends corked writes in one write', async () => {
      const owner = new Recorder();
      const { socket, peer } = await openConnected(owner);
      socket.cork();
      for (let i = 0; i < 20; i++) socket.write(Buffer.from(`[${i}]`));
      socket.uncork();
      const expected = Array.from({ length: 20 }, (_, i) => `[${i}]`).join('');
      while (peer.received.length < expected.length) await new Promise((resolve) => peer.socket.once('data', resolve));
      assert.equal(peer.received, expected);
      assert.equal(peer.reads, 1, 'the peer read them all at once');
      socket.destroy();
      await owner.closed();
    });

    it('destroy: the peer sees the end, the owner one close and no failure; writes after it send nothing', async () => {
      const owner = new Recorder();
      const { socket, peer } = await openConnected(owner);
      socket.destroy();
      socket.write('after');
      await owner.closed();
      await peer.ended;
      assert.equal(peer.received, '');
      assert.deepEqual(owner.events, ['connected', 'closed']);
    });

    it('write before connected sends nothing', async () => {
      const owner = new Recorder();
      const peerAccepted = nextPeer();
      const socket = open(owner);
      socket.write('too early');
      owner.onConnected = () => socket.write('on time');
      await owner.connected();
      const peer = await peerAccepted;
      while (!peer.received.includes('on time')) await new Promise((resolve) => peer.socket.once('data', resolve));
      assert.equal(peer.received, 'on time');
      socket.destroy();
      await owner.closed();
    });

    it('a refused connect: failed with ECONNREFUSED, then closed', async () => {
      const gone = createServer();
      const gonePort = await listen(gone);
      await new Promise<void>((resolve) => gone.close(() => resolve()));
      const owner = new Recorder();
      openSocket(driver, { host: '127.0.0.1', port: gonePort, tls: false }, owner);
      await owner.closed();
      assert.deepEqual(owner.events, ['failed ECONNREFUSED', 'closed']);
      assert.ok(owner.errors[0] instanceof Error);
    });

    it('a reset by the peer: failed with ECONNRESET, then closed', async () => {
      const owner = new Recorder();
      const { peer } = await openConnected(owner);
      peer.socket.resetAndDestroy();
      await owner.closed();
      assert.deepEqual(owner.events, ['connected', 'failed ECONNRESET', 'closed']);
    });

    it('abandon: the owner hears nothing more, not even the close, and the peer sees the end', async () => {
      const owner = new Recorder();
      const { socket, peer } = await openConnected(owner);
      socket.abandon();
      peer.socket.write('ignored');
      await peer.ended;
      // A close event would come within a turn or two of the handle closing; give it a few.
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(owner.events, ['connected']);
    });

    it('binds the local address and port it is given; the same pair again is a failure with its code', async () => {
      const owner = new Recorder();
      // A port from the top of the ephemeral range, on a second loopback address: free in a test run.
      const localPort = 60_000 + Math.floor(Math.random() * 900);
      const { socket, peer } = await openConnected(owner, { localAddress: '127.0.0.2', localPort });
      assert.equal(peer.socket.remoteAddress, '127.0.0.2');
      assert.equal(peer.socket.remotePort, localPort);
      try {
        const second = new Recorder();
        open(second, { localAddress: '127.0.0.2', localPort });
        await second.closed();
        // libuv binds with SO_REUSEADDR, so the kernel refuses the connect (the same four-tuple) rather than the bind.
        assert.equal(second.events.length, 2, second.events.join(', '));
        assert.match(second.events[0], /^failed (EADDRINUSE|EADDRNOTAVAIL)$/);
      } finally {
        socket.destroy();
        await owner.closed();
      }
    });
  });
}
