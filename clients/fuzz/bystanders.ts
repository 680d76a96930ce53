/**
 * The other clients while a server is attacked: one publisher sends a numbered message every few
 * milliseconds with an id, and subscribers time each copy. At the end it says what each subscriber
 * missed of what was acked, and the round-trip percentiles, so the attack's cost to others shows.
 */
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

export interface BystanderReport {
  /** Connections the bystanders held (and closed cleanly at the end). */
  connections: number;
  sent: number;
  acked: number;
  /** Acked messages some subscriber did not get, summed over subscribers. */
  missing: number;
  /** Copies delivered, summed over subscribers. */
  received: number;
  /** Publish-to-delivery time of every copy, milliseconds. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface Bystanders {
  /** Stops publishing, waits up to 5 s for the last acked copies, closes, and reports. */
  stop(): Promise<BystanderReport>;
}

/** A socket whose frames go to `onText` from the first one on (the welcome may come with the upgrade's answer). */
function open(url: string, onText: (ws: WebSocket, text: string) => void): WebSocket {
  const ws = new WebSocket(url);
  ws.on('message', (data) => onText(ws, String(data)));
  return ws;
}

/** Starts `subscribers` subscribers and one publisher on `channel`, a message every `intervalMs`. */
export async function startBystanders(base: string, { subscribers = 4, intervalMs = 2, channel = 'bystanders' } = {}): Promise<Bystanders> {
  const latencies: number[] = [];
  const got: Set<number>[] = [];
  const subs: WebSocket[] = [];
  for (let i = 0; i < subscribers; i++) {
    const seen = new Set<number>();
    got.push(seen);
    let subscribed!: () => void;
    const ready = new Promise<void>((resolve) => (subscribed = resolve));
    const ws = open(`${base}/pubsub`, (self, text) => {
      const frame = JSON.parse(text);
      if (frame.event === 'welcome') self.send(JSON.stringify({ action: 'subscribe', payload: { channel }, id: 1 }));
      else if (frame.event === 'subscribed') subscribed();
      else if (frame.event === 'message') {
        seen.add(frame.message.n);
        latencies.push(performance.now() - frame.message.t);
      }
    });
    await ready;
    subs.push(ws);
  }
  const acked = new Set<number>();
  const publisher = open(`${base}/pubsub`, (_, text) => {
    const frame = JSON.parse(text);
    if (frame.event === 'published') acked.add(frame.id);
  });
  await once(publisher, 'open');
  let n = 0;
  const timer = setInterval(() => {
    n++;
    publisher.send(JSON.stringify({ action: 'publish', payload: { channel, message: { n, t: performance.now() } }, id: n }));
  }, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      const deadline = Date.now() + 5000;
      const complete = (): boolean => acked.size === n && got.every((seen) => [...acked].every((k) => seen.has(k)));
      while (!complete() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      for (const ws of [...subs, publisher]) ws.close();
      await Promise.all([...subs, publisher].map((ws) => (ws.readyState === WebSocket.CLOSED ? undefined : once(ws, 'close'))));
      latencies.sort((a, b) => a - b);
      const at = (q: number): number => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : NaN);
      let missing = 0;
      for (const seen of got) for (const k of acked) if (!seen.has(k)) missing++;
      return { connections: subs.length + 1, sent: n, acked: acked.size, missing, received: latencies.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: latencies.at(-1) ?? NaN };
    },
  };
}
