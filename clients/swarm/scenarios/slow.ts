/**
 * The slow-IO test: each client sends `requests` slow requests of `slowMs` at once on one connection
 * and times each reply. A server that handles them concurrently answers all after about `slowMs`; one that
 * handles them in turn answers the last after `requests` x `slowMs`.
 */
import { SwarmError, nowMicros, record } from '../metrics.js';
import { expectEvent } from './frames.js';
import type { Scenario } from '../client-context.js';

export const slow: Scenario = async (ctx) => {
  const { options, histograms, samples } = ctx;
  const conn = await ctx.connect();
  try {
    expectEvent(await conn.nextJson(options.replyTimeout, 'welcome'), 'welcome');
    await ctx.barrier();
    const sentAt = nowMicros();
    for (let id = 1; id <= options.requests; id++) {
      conn.send(`{"action":"slow","payload":{"ms":${options.slowMs}},"id":${id}}`);
    }
    const pending = new Set(Array.from({ length: options.requests }, (_, i) => i + 1));
    const limit = options.slowMs + options.replyTimeout;
    while (pending.size > 0) {
      const frame = await conn.nextJson(Math.max(1, limit - (nowMicros() - sentAt) / 1000), `${pending.size} slow replies`);
      if (frame.event === 'error') throw new SwarmError('protocol_mismatch', `slow request refused: ${String(frame.code)} ${String(frame.message)}`);
      expectEvent(frame, 'slow');
      const id = frame.id as number;
      if (!pending.delete(id)) throw new SwarmError('protocol_mismatch', `slow reply with unknown or repeated id ${String(frame.id)}`);
      const micros = nowMicros() - sentAt;
      record(histograms.slow, micros);
      samples.push({ client: ctx.index, request: id, ms: Math.round(micros) / 1000 });
    }
    await conn.close(options.replyTimeout);
  } finally {
    conn.terminate();
  }
};
