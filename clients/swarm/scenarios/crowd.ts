/**
 * The C100k sequence: every client is connected at the same time, runs the echo sequence, and receives
 * every broadcast. Each client opens `/pubsub`, reads welcome, subscribes to `channel`, and waits at the
 * barrier until every client of every worker is subscribed. From that common instant:
 *
 * - echo: `rounds` times a `ping` whose id carries the client, the round and the padding, answered by a
 *   `pong` with the same id; round r of client i is due at (i / clients + r - 1) x delay, so the pings
 *   are spread evenly (clients / delay per second). `/echo` would fit the sequence better, but an
 *   `/echo` socket cannot subscribe, and every socket must receive the broadcasts.
 * - broadcast: client 0 publishes message k (`{"t":due,"b":k}`) at (k - 1/2) x broadcastEvery, for
 *   every k that falls inside the rounds; the server carries it to every subscriber (through Redis when
 *   there are several server processes). Each client counts each k once, and times its arrival from its
 *   due moment (fanout). A duplicate or one out of order is a protocol mismatch; a missing one shows as a lost delivery
 *   (published x subscribed - delivered).
 *
 * Every client listens until the rounds and `drain` are over, so all are still connected for the last
 * broadcast, and then, if that one has not come yet, up to `replyTimeout` more for it: a copy on its way
 * (a server or a swarm far behind) is late, not lost; one not in by then counts as lost. Then it closes.
 */
import { SwarmError, nowMicros, record } from '../metrics.js';
import { broadcastCount } from '../options.js';
import { contract } from '../protocols/contract.js';
import { subscribeToRunChannel } from './frames.js';
import { CLOSING_BRACE, dueOf, intAfter } from './raw-fields.js';
import type { Scenario } from '../client-context.js';

const BROADCAST_KEY = Buffer.from('"b":');

export const crowd: Scenario = async (ctx) => {
  const { options, counters, histograms, index } = ctx;
  const conn = await ctx.connect();
  try {
    await subscribeToRunChannel(ctx, conn);
    const released = await ctx.barrier();

    // Broadcasts arrive in publish order (one publisher; one TCP path, or Redis, which keeps a
    // publisher's order), so the last one seen is all a client keeps to catch a duplicate.
    let lastBroadcast = 0;
    const lastDue = broadcastCount(options);
    /** Set while the client waits past the drain for the last broadcast. */
    let lastArrived: (() => void) | null = null;
    let trouble: string | null = null;
    let pending: { id: string; done: (err?: SwarmError) => void } | null = null;
    // A broadcast copy is read as bytes (a worker gets one per client, all in the same moment); the few
    // other frames (pongs, the publisher's acks) are parsed.
    conn.streamRaw((data, from, to) => {
      const kind = contract.classify(data, from, to);
      if (kind === 'message') {
        const due = dueOf(data, from, to);
        const k = intAfter(data, from, to, BROADCAST_KEY, CLOSING_BRACE);
        if (Number.isNaN(due) || Number.isNaN(k)) {
          trouble ??= `unexpected message ${data.toString('utf8', from, Math.min(to, from + 120))}`;
        } else if (k <= lastBroadcast) {
          trouble ??= `broadcast ${k} arrived after ${lastBroadcast}`;
        } else {
          lastBroadcast = k;
          counters.delivered++;
          record(histograms.fanout, conn.readAt - due);
          if (k === lastDue) lastArrived?.();
        }
      } else if (kind === 'other') {
        const frame = data.toString('utf8', from, to);
        if (frame.startsWith('{"event":"pong"')) {
          const { id } = JSON.parse(frame) as { id: unknown };
          if (pending && id === pending.id) pending.done();
          else trouble ??= `pong with id ${JSON.stringify(id).slice(0, 60)} while waiting for ${pending?.id ?? 'none'}`;
        } else {
          trouble ??= `server sent ${frame.slice(0, 160)}`;
        }
      }
    });
    conn.onClose(() => pending?.done(new SwarmError('unexpected_close', 'the server closed the socket during the echo rounds')));
    const echo = (id: string): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => pending?.done(new SwarmError('timeout', `no pong for ${id.slice(0, 40)} within ${options.replyTimeout} ms`)), options.replyTimeout);
        pending = {
          id,
          done: (err) => {
            clearTimeout(timer);
            pending = null;
            if (err) reject(err);
            else resolve();
          },
        };
        conn.send(JSON.stringify({ action: 'ping', id }));
      });

    const publishBroadcasts = async (): Promise<void> => {
      for (let k = 1; k <= lastDue; k++) {
        const due = released + (k - 0.5) * options.broadcastEvery * 1000;
        await ctx.sleepUntil(due);
        conn.send(JSON.stringify({ action: 'publish', payload: { channel: options.channel, message: { t: Math.round(due * 1000), b: k } } }));
        counters.published++;
      }
    };
    const delay = options.delay * 1000;
    const broadcasting = index === 0 ? publishBroadcasts() : Promise.resolve();
    broadcasting.catch(() => undefined); // awaited below; a deadline must not count as unhandled meanwhile
    const pad = options.payload > 0 ? `.${'x'.repeat(options.payload)}` : '';
    for (let round = 1; round <= options.rounds; round++) {
      await ctx.sleepUntil(released + (index / options.clients + round - 1) * delay);
      if (conn.isClosed) throw new SwarmError('unexpected_close', `the server closed the socket before round ${round}`);
      const sentAt = nowMicros();
      await echo(`${index}.${round}${pad}`);
      record(histograms.rtt, nowMicros() - sentAt);
    }
    await broadcasting;
    await ctx.sleepUntil(released + options.rounds * delay + options.drain * 1000);
    if (lastBroadcast < lastDue && !conn.isClosed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.replyTimeout);
        lastArrived = () => (clearTimeout(timer), resolve());
        conn.onClose(lastArrived);
      });
    }
    if (trouble) throw new SwarmError('protocol_mismatch', trouble);
    if (conn.isClosed) throw new SwarmError('unexpected_close', 'the server closed the socket while the broadcasts ran');
    await conn.close(options.replyTimeout);
  } finally {
    conn.terminate();
  }
};
