/** Checks on the server's JSON events that several scenarios share. */
import type { Connection } from '../connection.js';
import { SwarmError } from '../metrics.js';
import type { ClientContext } from './types.js';

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

/** Reads welcome, subscribes to the run's `--channel` and waits for the ack; counts the client as subscribed. */
export async function subscribeToRunChannel(ctx: ClientContext, conn: Connection): Promise<void> {
  const { options } = ctx;
  expectEvent(await conn.nextJson(options.replyTimeout, 'welcome'), 'welcome');
  conn.send(JSON.stringify({ action: 'subscribe', payload: { channel: options.channel }, id: 1 }));
  await awaitReply(() => conn.nextJson(options.replyTimeout, 'subscribed'), 'subscribed', 1);
  ctx.counters.subscribed++;
}
