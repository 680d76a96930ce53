/**
 * The sockjs-bench broadcast method: every client subscribes to one channel; once all are subscribed,
 * the clients publish in turn so that the total rate is `rate` per second (client i sends at
 * i/rate, then every clients/rate seconds); each message reaches every client, and each client times the
 * round trip of its own messages (rtt).
 *
 * With `publishers` K > 0 the roles split: the first K clients publish in turn at the total rate and do
 * not subscribe, the others only subscribe, and each subscriber times every copy it gets from the moment
 * it was due (fanout; the publisher's and the subscriber's clocks are the same machine's, as epoch µs).
 * This is the cross-instance form: a publisher on one server process, its subscribers on others.
 *
 * Coordinated omission: latency is measured from the moment a message was *due*, not from when the
 * client got round to sending it, so a client (or server) that falls behind shows as latency instead
 * of silently lowering the rate. Messages due in the first `warmup` seconds are delivered and counted,
 * but not timed.
 */
import { SwarmError, epochMicros, newHistogram, record } from '../metrics.js';
import { PROTOCOL_ADAPTERS } from '../protocols/index.js';
import { subscribeToRunChannel } from './frames.js';
import { contains, dueOf } from './raw-fields.js';
import type { Scenario } from '../client-context.js';

/**
 * Where warm-up copies are recorded, only to be thrown away. Recording them like the timed ones keeps
 * the hot path one piece of code: when the first timed copy took a branch the JIT had never seen, the
 * swarm's event loop stalled for 8-10 ms, and fanout p50 over that second was 3.5 ms instead of 0.4
 * (50,000 msg/s through 3 server processes).
 */
const warmupHistogram = newHistogram();

export const broadcast: Scenario = async (ctx) => {
  const { options, counters, histograms, index } = ctx;
  const split = options.publishers > 0;
  const publishes = !split || index < options.publishers;
  const subscribes = !split || index >= options.publishers;
  const protocol = PROTOCOL_ADAPTERS[options.protocol];
  const conn = await ctx.connect();
  try {
    if (subscribes) await subscribeToRunChannel(ctx, conn);
    else await protocol.opened(conn, options.replyTimeout);
    const released = await ctx.barrier();
    const start = released * 1000;
    // Messages carry their due moment rounded to whole µs; the warm-up's end is compared the same way.
    const timedFrom = Math.round(start + options.warmup * 1e6);

    const mine = Buffer.from(`{"c":${index},`);
    let ownSent = 0;
    let ownBack = 0;
    let trouble: string | null = null;
    // Each copy is read as bytes: its kind from the first bytes, its due moment from "t":, and (without
    // publishers) whether it is this client's own from {"c":<index>,. No string per copy.
    conn.streamRaw({ rawFrame: (data, from, to) => {
      const kind = protocol.classify(data, from, to);
      // A publisher that does not subscribe may still get copies (a raw server sends to everyone); they are not deliveries.
      if (kind === 'message' && subscribes) {
        counters.delivered++;
        if (split) {
          const due = dueOf(data, from, to);
          if (Number.isNaN(due)) trouble ??= `unexpected message ${data.toString('utf8', from, Math.min(to, from + 120))}`;
          else record(due >= timedFrom ? histograms.fanout : warmupHistogram, conn.readAt - due);
        } else {
          if (contains(data, from, to, mine)) {
            ownBack++;
            const due = dueOf(data, from, to);
            if (!Number.isNaN(due)) record(due >= timedFrom ? histograms.rtt : warmupHistogram, conn.readAt - due);
          }
        }
      } else if (kind === 'other') {
        trouble ??= `server sent ${data.toString('utf8', from, Math.min(to, from + 160))}`;
      }
    } });

    const end = start + options.duration * 1e6;
    if (publishes) {
      const senders = split ? options.publishers : options.clients;
      const interval = (senders / options.rate) * 1e6;
      const pad = 'x'.repeat(options.payload);
      // Whatever is due when the client wakes goes out at once, in one write. The pacer wakes it within
      // about 0.2 ms of the due moment; that lateness still counts, since each message is timed from it.
      let due = start + (index / options.rate) * 1e6;
      while (due < end) {
        if (epochMicros() < due) await ctx.pace(due);
        if (conn.isClosed) break;
        conn.batch(() => {
          const now = epochMicros();
          while (due < end && due <= now) {
            record(due >= timedFrom ? histograms.lag : warmupHistogram, now - due);
            conn.send(protocol.publishFrame(options.channel, `{"c":${index},"t":${Math.round(due)},"p":"${pad}"}`));
            counters.published++;
            ownSent++;
            due += interval;
          }
        });
      }
    }
    // Listen until everyone has published and the drain is over, not just past this client's own last
    // send: at a low rate most clients publish once or never, yet must receive every message.
    await ctx.sleepUntil(end / 1000 + options.drain * 1000);
    if (!split) counters.ownLost += ownSent - ownBack;
    if (trouble) throw new SwarmError('protocol_mismatch', trouble);
    if (conn.isClosed) throw new SwarmError('unexpected_close', 'the server closed the socket during the broadcast');
    await conn.close(options.replyTimeout);
  } finally {
    conn.terminate();
  }
};
