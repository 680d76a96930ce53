/**
 * A pub/sub round trip per client: subscribe to one of `channels` channels, then `rounds` times wait
 * `delay`, publish with an id, and wait for both the `published` ack and the message itself; the time to
 * the own message goes to `rtt`. Then unsubscribe and close.
 */
import { SwarmError, nowMicros, record } from '../metrics.js';
import { awaitReply, expectEvent } from './frames.js';
import type { Scenario } from '../client-context.js';

export const pubsub: Scenario = async (ctx) => {
  const { options, counters, histograms, index } = ctx;
  const channel = `${options.channel}-${index % options.channels}`;
  const conn = await ctx.connect();
  const next = (what: string) => () => conn.nextJson(options.replyTimeout, what);
  const countDelivery = (): void => void counters.delivered++;
  try {
    expectEvent(await conn.nextJson(options.replyTimeout, 'welcome'), 'welcome');
    conn.send(JSON.stringify({ action: 'subscribe', payload: { channel }, id: 0 }));
    await awaitReply(next('subscribed'), 'subscribed', 0, countDelivery);
    counters.subscribed++;
    for (let round = 1; round <= options.rounds; round++) {
      await ctx.sleepUntil(ctx.slot + round * options.delay * 1000);
      const sentAt = nowMicros();
      conn.send(JSON.stringify({ action: 'publish', payload: { channel, message: { c: index, r: round } }, id: round }));
      counters.published++;
      let acked = false;
      let own = false;
      while (!acked || !own) {
        const frame = await next(`published ${round} and own message`)();
        if (frame.event === 'published' && frame.id === round) {
          acked = true;
        } else if (frame.event === 'message') {
          counters.delivered++;
          const message = frame.message as { c?: number; r?: number } | null;
          if (message?.c === index && message.r === round) {
            own = true;
            record(histograms.rtt, nowMicros() - sentAt);
          }
        } else {
          throw new SwarmError('protocol_mismatch', `round ${round}: unexpected ${JSON.stringify(frame).slice(0, 120)}`);
        }
      }
    }
    conn.send(JSON.stringify({ action: 'unsubscribe', payload: { channel }, id: 'bye' }));
    await awaitReply(next('unsubscribed'), 'unsubscribed', 'bye', countDelivery);
    await conn.close(options.replyTimeout);
  } finally {
    conn.terminate();
  }
};
