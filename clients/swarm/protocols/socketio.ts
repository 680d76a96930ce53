/**
 * Socket.IO v5 over Engine.IO v4, WebSocket transport only (no polling), written from the published
 * protocol (socket.io-protocol v5, engine.io-protocol v4). Packets are text frames: an Engine.IO type
 * digit, then for messages (4) a Socket.IO type digit and its data: `0{...}` open, `2`/`3` ping/pong,
 * `40` connect to the main namespace (answered `40{"sid":...}`), `41` disconnect, `42[event,...args]` an
 * event, `42<id>[...]` one asking for an ack, `43<id>[...]` the ack.
 *
 * Channels are rooms, as a Socket.IO application would have them: events `subscribe` (room, with an ack),
 * `publish` ({channel, message}) and `echo` (sent back as it came), and the server's `message` events
 * ({channel, message}): what bench/socketio-server.ts does. The server's pings are answered by the
 * connection (Connection.answer) without the scenario seeing them.
 */
import { SwarmError } from '../metrics.js';
import { parseJson, startsWith, type Protocol } from './types.js';

const MESSAGE = Buffer.from('42["message"');
const ACK = Buffer.from('43');
const PING = 0x32; // '2'

export const socketio: Protocol = {
  name: 'socketio',
  async opened(conn, timeoutMs) {
    // A ping is one byte, '2'; the answer goes out at once, and the frame is not the scenario's.
    conn.answer((data, start, end) => (end - start === 1 && data[start] === PING ? '3' : null));
    const open = await conn.next(timeoutMs, 'the Engine.IO open packet');
    if (!open.startsWith('0{')) throw new SwarmError('protocol_mismatch', `expected the Engine.IO open packet 0{...}, got ${open.slice(0, 80)}`);
    conn.send('40');
    const connected = await conn.next(timeoutMs, 'the Socket.IO connect packet');
    if (!connected.startsWith('40')) throw new SwarmError('protocol_mismatch', `expected the Socket.IO connect packet 40{...}, got ${connected.slice(0, 80)}`);
    return null;
  },
  echoFrame: (text) => `42${JSON.stringify(['echo', text])}`,
  async endEcho(conn, timeoutMs) {
    conn.send('41');
    const { code } = await conn.close(timeoutMs);
    if (code !== 1000 && code !== 1005) throw new SwarmError('unexpected_close', `closed with ${code}, expected 1000`);
  },
  async subscribe(conn, channel, timeoutMs) {
    conn.send(`421${JSON.stringify(['subscribe', channel])}`);
    for (;;) {
      const reply = await conn.next(timeoutMs, 'the subscribe ack');
      if (reply.startsWith('431[')) return;
      if (!reply.startsWith('42["message"')) throw new SwarmError('protocol_mismatch', `expected the subscribe ack 431[...], got ${reply.slice(0, 80)}`);
    }
  },
  publishFrame: (channel, message) => `42["publish",{"channel":${JSON.stringify(channel)},"message":${message}}]`,
  message(frame) {
    if (!frame.startsWith('42["message"')) return null;
    const [, body] = (parseJson(frame.slice(2)) ?? []) as [unknown, { channel?: unknown; message?: unknown } | undefined];
    return body && typeof body.channel === 'string' ? { channel: body.channel, message: body.message } : null;
  },
  classify: (data, start, end) => (startsWith(data, start, end, MESSAGE) ? 'message' : startsWith(data, start, end, ACK) ? 'ack' : 'other'),
};
