/**
 * The swarm's own WebSocket client (clients/swarm/frame-codec.ts, handshake.ts, connection.ts): the codec on
 * its own, then the client with each socket driver (sockets/) against the `ws` package's server on real
 * sockets, where `ws` checks every frame we send (masking, lengths) and sends what a server may
 * (fragments, pings, close codes, binary).
 */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { Connection } from '../clients/swarm/connection.js';
import { encodeFrame, FrameDecoder, OPCODE } from '../clients/swarm/frame-codec.js';
import { checkUpgradeResponse, upgradeRequest, upgradeTarget } from '../clients/swarm/handshake.js';
import { emptyCounters, SwarmError } from '../clients/swarm/metrics.js';
import { CLIENT_SOCKET_DRIVERS } from '../clients/swarm/sockets/types.js';

/** A server frame (unmasked), as a server would write it. */
function serverFrame(fin: boolean, opcode: number, payload: Buffer): Buffer {
  const ext = payload.length < 126 ? 0 : payload.length < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (ext === 0) head[1] = payload.length;
  else if (ext === 2) (head[1] = 126), head.writeUInt16BE(payload.length, 2);
  else (head[1] = 127), head.writeBigUInt64BE(BigInt(payload.length), 2);
  return Buffer.concat([head, payload]);
}

/** Unmasks a client frame the way a server does, to check encodeFrame. */
function unmask(frame: Buffer): { opcode: number; payload: Buffer } {
  assert.equal(frame[1] & 0x80, 0x80, 'a client frame is masked');
  let length = frame[1] & 0x7f;
  let at = 2;
  if (length === 126) (length = frame.readUInt16BE(2)), (at = 4);
  else if (length === 127) (length = Number(frame.readBigUInt64BE(2))), (at = 10);
  const mask = frame.subarray(at, at + 4);
  const payload = Buffer.from(frame.subarray(at + 4));
  assert.equal(payload.length, length);
  for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
  return { opcode: frame[0] & 0x0f, payload };
}

function collect(): { decoder: FrameDecoder; seen: string[] } {
  const seen: string[] = [];
  const decoder = new FrameDecoder({
    frameText: (data, start, end) => seen.push(`text ${data.toString('utf8', start, end)}`),
    frameBinary: (data) => seen.push(`binary ${data.length}`),
    frameClose: (code, reason) => seen.push(`close ${code} ${reason}`),
    framePing: (payload) => seen.push(`ping ${payload.toString()}`),
    frameError: (message) => seen.push(`error ${message}`),
  }, 1024 * 1024);
  return { decoder, seen };
}

describe('frame codec', () => {
  it('masks every length form so that a server unmasks the same bytes', () => {
    for (const length of [0, 1, 3, 4, 5, 125, 126, 127, 65535, 65536, 70_001]) {
      const text = 'ä'.repeat(Math.floor(length / 2)) + 'x'.repeat(length % 2);
      const { opcode, payload } = unmask(encodeFrame(OPCODE.text, text));
      assert.equal(opcode, OPCODE.text);
      assert.equal(payload.toString('utf8'), text, `length ${length}`);
    }
  });

  it('decodes frames split at every byte, joined fragments, pings and close codes', () => {
    const stream = Buffer.concat([
      serverFrame(true, OPCODE.text, Buffer.from('{"event":"welcome"}')),
      serverFrame(false, OPCODE.text, Buffer.from('hel')),
      serverFrame(true, OPCODE.ping, Buffer.from('p')),
      serverFrame(true, OPCODE.continuation, Buffer.from('lo')),
      serverFrame(true, OPCODE.binary, Buffer.alloc(300)),
      serverFrame(true, OPCODE.text, Buffer.from('x'.repeat(70_000))),
      serverFrame(true, OPCODE.close, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')])),
    ]);
    const expected = ['text {"event":"welcome"}', 'ping p', 'text hello', 'binary 300', `text ${'x'.repeat(70_000)}`, 'close 1000 bye'];
    const whole = collect();
    whole.decoder.push(stream);
    assert.deepEqual(whole.seen, expected);
    const bytewise = collect();
    for (let i = 0; i < stream.length; i++) bytewise.decoder.push(stream.subarray(i, i + 1));
    assert.deepEqual(bytewise.seen, expected);
  });

  it('refuses what a server must not send', () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.from([0x81, 0x81, 1, 2, 3, 4, 0x41]), /masked/],
      [Buffer.from([0xc1, 0x01, 0x41]), /RSV/],
      [serverFrame(false, OPCODE.ping, Buffer.from('x')), /control frame/],
      [serverFrame(true, OPCODE.continuation, Buffer.from('x')), /continuation/],
      [serverFrame(true, 3, Buffer.from('x')), /opcode 3/],
      [serverFrame(true, OPCODE.text, Buffer.alloc(1024 * 1024 + 1)), /above the limit/],
    ];
    for (const [bytes, message] of cases) {
      const { decoder, seen } = collect();
      decoder.push(bytes);
      decoder.push(serverFrame(true, OPCODE.text, Buffer.from('after')));
      assert.equal(seen.length, 1, `one error and nothing after it: ${seen.join(' | ')}`);
      assert.match(seen[0], message);
    }
  });
});

describe('opening handshake', () => {
  it('writes one request with the key whose accept value it then requires', () => {
    const target = upgradeTarget('ws://127.0.0.1:9000/echo?rounds=3');
    const { request, accept } = upgradeRequest(target);
    assert.match(request, /^GET \/echo\?rounds=3 HTTP\/1\.1\r\nHost: 127\.0\.0\.1:9000\r\n/);
    assert.match(request, /\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: [A-Za-z0-9+/]{22}==\r\n\r\n$/);
    const ok = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}`;
    assert.deepEqual(checkUpgradeResponse(ok, accept), { ok: true });
    assert.deepEqual(checkUpgradeResponse(ok.replace(accept, 'x'), accept), { ok: false, status: 101, message: 'Invalid Sec-WebSocket-Accept header' });
    assert.deepEqual(checkUpgradeResponse('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0', accept), { ok: false, status: 401, message: 'upgrade answered with HTTP 401' });
    assert.equal(checkUpgradeResponse(`${ok}\r\nSec-WebSocket-Extensions: permessage-deflate`, accept).ok, false);
  });
});

for (const sockets of CLIENT_SOCKET_DRIVERS) describe(`the swarm client against the ws server (${sockets} sockets)`, () => {
  let wss: WebSocketServer;
  let url: string;
  const received: string[] = [];
  /** The server's side: `pong` (payload) and `close` (code) of its sockets. */
  const serverSide = new EventEmitter();

  before(async () => {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
    await new Promise((resolve) => wss.once('listening', resolve));
    url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}`;
    wss.on('connection', (ws: WebSocket, req) => {
      ws.on('close', (code) => serverSide.emit('close', code));
      ws.on('message', (data, isBinary) => {
        const text = data.toString();
        received.push(isBinary ? `binary ${(data as Buffer).length}` : text);
        if (req.url === '/fragments') {
          // A fragmented message with a ping between its fragments, as RFC 6455 5.4 allows.
          const socket = (ws as unknown as { _socket: import('node:net').Socket })._socket;
          socket.write(Buffer.concat([serverFrame(false, OPCODE.text, Buffer.from(text.slice(0, 2))), serverFrame(true, OPCODE.ping, Buffer.from('hi')), serverFrame(true, OPCODE.continuation, Buffer.from(text.slice(2)))]));
        } else if (text === 'close-me') {
          ws.close(4001, 'because');
        } else if (text === 'binary') {
          ws.send(Buffer.alloc(10));
        } else {
          ws.send(text);
        }
      });
      ws.on('pong', (data) => serverSide.emit('pong', data.toString()));
    });
  });
  after(() => new Promise<void>((resolve) => wss.close(() => resolve())));

  it('echoes frames of every length form, UTF-8 included, and closes cleanly', async () => {
    const counters = emptyCounters();
    const conn = await Connection.open(`${url}/`, counters, { timeoutMs: 2000, sockets });
    for (const length of [0, 5, 125, 126, 65535, 65536, 200_000]) {
      const text = `ü${'y'.repeat(length)}`;
      conn.send(text);
      assert.equal(await conn.next(2000, `echo of ${length}`), text);
    }
    const serverClose = once(serverSide, 'close');
    assert.equal((await conn.close(2000)).code, 1000);
    assert.deepEqual(await serverClose, [1000], 'the server saw our close frame with 1000');
    assert.deepEqual({ connected: counters.connected, closed: counters.closed, sent: counters.sent, received: counters.received }, { connected: 0, closed: 1, sent: 7, received: 7 });
  });

  it('joins fragments, answers a ping with a pong, and tells a binary frame apart', async () => {
    const conn = await Connection.open(`${url}/fragments`, emptyCounters(), { timeoutMs: 2000, sockets });
    const pong = once(serverSide, 'pong');
    conn.send('fragmented');
    assert.equal(await conn.next(2000), 'fragmented');
    assert.deepEqual(await pong, ['hi']);
    conn.terminate();
    const other = await Connection.open(`${url}/`, emptyCounters(), { timeoutMs: 2000, sockets });
    other.send('binary');
    await assert.rejects(other.next(2000, 'a reply'), (err: SwarmError) => err.kind === 'protocol_mismatch' && /binary frame/.test(err.message));
    other.terminate();
  });

  it('reports the code and reason of a close the server starts, after answering it', async () => {
    const conn = await Connection.open(`${url}/`, emptyCounters(), { timeoutMs: 2000, sockets });
    const serverClose = once(serverSide, 'close');
    conn.send('close-me');
    assert.deepEqual(await conn.closed(2000), { code: 4001, reason: 'because' });
    assert.deepEqual(await serverClose, [4001], 'the server got its code back');
    await assert.rejects(conn.next(100), (err: SwarmError) => err.kind === 'unexpected_close');
  });

  it('times out a reply that does not come, and a server that never answers the upgrade', async () => {
    const conn = await Connection.open(`${url}/`, emptyCounters(), { timeoutMs: 2000, sockets });
    await assert.rejects(conn.next(150, 'nothing'), (err: SwarmError) => err.kind === 'timeout' && err.message === 'no nothing within 150 ms');
    conn.terminate();
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const counters = emptyCounters();
    await assert.rejects(Connection.open(`ws://127.0.0.1:${(silent.address() as { port: number }).port}/`, counters, { timeoutMs: 200, sockets }), (err: SwarmError) => err.kind === 'timeout');
    assert.deepEqual({ opening: counters.opening, failed: counters.failed }, { opening: 0, failed: 1 });
    silent.close();
  });

  it('sorts refused connects and non-101 answers into their kinds', async () => {
    const closed: Server = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(Connection.open(`ws://127.0.0.1:${port}/`, emptyCounters(), { timeoutMs: 1000, sockets }), (err: SwarmError) => err.kind === 'refused');
    const http: Server = createServer((socket) => socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    await assert.rejects(
      Connection.open(`ws://127.0.0.1:${(http.address() as { port: number }).port}/`, emptyCounters(), { timeoutMs: 1000, sockets }),
      (err: SwarmError) => err.kind === 'rejected' && err.message === 'upgrade answered with HTTP 403',
    );
    http.close();
  });
});
