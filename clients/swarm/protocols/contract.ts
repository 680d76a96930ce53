/** Our contract (docs/protocol.md): welcome, subscribe with an ack, publish actions, message events, goodbye. */
import { SwarmError } from '../metrics.js';
import { parseJson, startsWith, type Protocol } from './types.js';

/** Throws a protocol mismatch unless `frame` is the event `name`. */
export function expectEvent(frame: Record<string, unknown>, name: string): void {
  if (frame.event !== name) {
    throw new SwarmError('protocol_mismatch', `expected ${name}, got ${JSON.stringify(frame).slice(0, 120)}`);
  }
}

/** Reads frames until the event `name` with `id` arrives; message events in between are handed to `other`. */
export async function awaitReply(
  next: () => Promise<Record<string, unknown>>,
  name: string,
  id: number | string,
  other: (frame: Record<string, unknown>) => void = () => undefined,
): Promise<Record<string, unknown>> {
  for (;;) {
    const frame = await next();
    if (frame.event === name && frame.id === id) return frame;
    if (frame.event === 'error') {
      throw new SwarmError('protocol_mismatch', `error ${String(frame.code)} instead of ${name} ${id}: ${String(frame.message)}`);
    }
    if (frame.event !== 'message') throw new SwarmError('protocol_mismatch', `expected ${name} ${id}, got ${JSON.stringify(frame).slice(0, 120)}`);
    other(frame);
  }
}


const MESSAGE = Buffer.from('{"event":"message"');
const PUBLISHED = Buffer.from('{"event":"published"');

export const contract: Protocol = {
  name: 'contract',
  async opened(conn, timeoutMs) {
    const welcome = await conn.nextJson(timeoutMs, 'welcome');
    expectEvent(welcome, 'welcome');
    return welcome;
  },
  echoFrame: (text) => text,
  async endEcho(conn, timeoutMs) {
    expectEvent(await conn.nextJson(timeoutMs, 'goodbye'), 'goodbye');
    const { code } = await conn.closed(timeoutMs);
    if (code !== 1000) throw new SwarmError('unexpected_close', `closed with ${code} after goodbye, expected 1000`);
  },
  async subscribe(conn, channel, timeoutMs) {
    conn.send(JSON.stringify({ action: 'subscribe', payload: { channel }, id: 1 }));
    await awaitReply(() => conn.nextJson(timeoutMs, 'subscribed'), 'subscribed', 1);
  },
  publishFrame: (channel, message) => `{"action":"publish","payload":{"channel":${JSON.stringify(channel)},"message":${message}}}`,
  message(frame) {
    if (!frame.startsWith('{"event":"message"')) return null;
    const event = parseJson(frame) as { channel?: unknown; message?: unknown } | undefined;
    return event && typeof event.channel === 'string' ? { channel: event.channel, message: event.message } : null;
  },
  classify: (data, start, end) => (startsWith(data, start, end, MESSAGE) ? 'message' : startsWith(data, start, end, PUBLISHED) ? 'ack' : 'other'),
};
