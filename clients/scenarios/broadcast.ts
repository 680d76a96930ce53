/**
 * The sockjs-bench broadcast method: every client subscribes to one channel; once all are subscribed,
 * the clients publish in turn so that the total rate is `rate` per second (client i sends at
 * i/rate, then every clients/rate seconds); each message reaches every client, and each client times the
 * round trip of its own messages.
 *
 * Coordinated omission: the round trip is measured from the moment the message was *due*, not from when
 * the client got round to sending it, so a client (or server) that falls behind shows as latency instead
 * of silently lowering the rate.
 */
import { SwarmError, nowMicros, record } from '../metrics.js';
import { subscribeToRunChannel } from './frames.js';
import type { Scenario } from './types.js';

export const broadcast: Scenario = async (ctx) => {
  const { options, counters, histograms, index } = ctx;
  const conn = await ctx.connect();
  try {
    await subscribeToRunChannel(ctx, conn);
    await ctx.barrier();

    const mine = `"c":${index},`;
    let ownSent = 0;
    let ownBack = 0;
    let serverError: string | null = null;
    conn.stream((frame) => {
      if (frame.startsWith('{"event":"message"')) {
        counters.delivered++;
        if (!frame.includes(mine)) return;
        const message = (JSON.parse(frame) as { message: { c: number; t: number } }).message;
        if (message.c !== index) return;
        ownBack++;
        record(histograms.rtt, nowMicros() - message.t);
      } else if (frame.startsWith('{"event":"error"') || frame.startsWith('{"event":"goodbye"')) {
        serverError ??= frame.slice(0, 160);
      }
    });

    const start = nowMicros();
    const interval = (options.clients / options.rate) * 1e6;
    const end = start + options.duration * 1e6;
    const pad = 'x'.repeat(options.payload);
    for (let due = start + (index / options.rate) * 1e6; due < end; due += interval) {
      const wait = (due - nowMicros()) / 1000;
      if (wait > 1) await ctx.sleep(wait);
      if (conn.isClosed) break;
      conn.send(`{"action":"publish","payload":{"channel":"${options.channel}","message":{"c":${index},"t":${due},"p":"${pad}"}}}`);
      counters.published++;
      ownSent++;
    }
    // Listen until everyone has published and the drain is over, not just past this client's own last
    // send: at a low rate most clients publish once or never, yet must receive every message.
    await ctx.sleep(Math.max(0, (end - nowMicros()) / 1000) + options.drain * 1000);
    counters.ownLost += ownSent - ownBack;
    if (serverError) throw new SwarmError('protocol_mismatch', `server sent ${serverError}`);
    if (conn.isClosed) throw new SwarmError('unexpected_close', 'the server closed the socket during the broadcast');
    await conn.close(options.replyTimeout);
  } finally {
    conn.terminate();
  }
};
