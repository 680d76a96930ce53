/**
 * Any plain WebSocket server: no welcome, no subscription, no envelope. An echo server sends each frame
 * back as it came; a broadcast server sends every frame it gets to every client. A message is timed by
 * the marker the swarm puts in its own payload (`"t":<due µs>`), so every frame from the server counts
 * as a message. The client ends the echo sequence itself with a 1000 close.
 */
import { SwarmError } from '../metrics.js';
import { parseJson, type Protocol } from './types.js';

export const raw: Protocol = {
  name: 'raw',
  async opened() {
    return null;
  },
  echoFrame: (text) => text,
  async endEcho(conn, timeoutMs) {
    const { code } = await conn.close(timeoutMs);
    if (code !== 1000) throw new SwarmError('unexpected_close', `closed with ${code}, expected 1000`);
  },
  async subscribe() {},
  publishFrame: (_channel, message) => message,
  message: (frame) => ({ channel: '', message: parseJson(frame) ?? frame }),
  classify: () => 'message',
};
