/**
 * Misbehaving servers for checking that the swarm measures truly: they do a known thing (delay every
 * echo by a set time, drop chosen messages, break the contract) and count what they did, so a test can
 * compare the swarm's report with the truth.
 */
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface FakeServer {
  /** `ws://127.0.0.1:<port>` */
  url: string;
  /** What the server did, by name (e.g. `dropped`). */
  counts: Record<string, number>;
  /**
   * For each echo sent, ms from its request's message event to the send: what the server really added,
   * which on a busy host is more than the timer asked for.
   */
  heldMs: number[];
  close(): Promise<void>;
}

interface Connection {
  ws: WebSocket;
  counts: Record<string, number>;
  heldMs: number[];
  from: string;
}

async function listen(onConnection: (connection: Connection) => void): Promise<FakeServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise((resolve) => wss.once('listening', resolve));
  const counts: Record<string, number> = {};
  const heldMs: number[] = [];
  wss.on('connection', (ws, req) => onConnection({ ws, counts, heldMs, from: req.socket.remoteAddress ?? '' }));
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    counts,
    heldMs,
    close: () =>
      new Promise((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  };
}

const bump = (counts: Record<string, number>, key: string): void => void (counts[key] = (counts[key] ?? 0) + 1);

/**
 * The /echo sequence with every echo sent `delayMs` late. With `dropEvery`, connection n (counted from 1)
 * where n % dropEvery === 0 never gets its second echo (counted as `dropped`); with `goodbyeInstead`
 * it gets a goodbye and a 1000 close in its place. Counts connections by source address as
 * `from <address>`.
 */
export function echoServer(options: { delayMs: number; rounds: number; dropEvery?: number; goodbyeInstead?: boolean }): Promise<FakeServer> {
  let connections = 0;
  return listen(({ ws, counts, heldMs, from }) => {
    const n = ++connections;
    bump(counts, `from ${from}`);
    let echoed = 0;
    ws.send('{"event":"welcome"}');
    ws.on('message', (data) => {
      const received = performance.now();
      const round = ++echoed;
      if (options.dropEvery && n % options.dropEvery === 0 && round === 2) {
        bump(counts, 'dropped');
        if (options.goodbyeInstead) {
          ws.send('{"event":"goodbye"}');
          ws.close(1000);
        }
        return;
      }
      setTimeout(() => {
        heldMs.push(performance.now() - received);
        ws.send(data.toString());
        if (round === options.rounds) {
          ws.send('{"event":"goodbye"}');
          ws.close(1000);
        }
      }, options.delayMs);
    });
  });
}

/**
 * A one-channel pub/sub server that skips every `dropEvery`-th delivery (counting all deliveries to all
 * subscribers); counts `skipped` and `skippedOwn` (skipped copies that were going back to their publisher).
 */
export function lossyBroadcastServer(dropEvery: number): Promise<FakeServer> {
  const subscribers = new Set<WebSocket>();
  let deliveries = 0;
  return listen(({ ws, counts }) => {
    ws.send('{"event":"welcome","connection":"x","user":null,"session":"s"}');
    ws.on('close', () => subscribers.delete(ws));
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { action: string; id?: number; payload: { channel: string; message?: unknown } };
      if (frame.action === 'subscribe') {
        subscribers.add(ws);
        ws.send(JSON.stringify({ event: 'subscribed', channel: frame.payload.channel, id: frame.id }));
      } else if (frame.action === 'publish') {
        const text = JSON.stringify({ event: 'message', channel: frame.payload.channel, message: frame.payload.message });
        for (const sub of subscribers) {
          if (++deliveries % dropEvery === 0) {
            bump(counts, 'skipped');
            if (sub === ws) bump(counts, 'skippedOwn');
          } else {
            sub.send(text);
          }
        }
      }
    });
  });
}

/**
 * The crowd sequence's server side (subscribe, ping, publish to every subscriber) that holds back the
 * copies of broadcast `b` >= `lateFrom` by `lateMs` (counted as `late`), or with `skip` never sends them
 * (counted as `skipped`).
 */
export function lateBroadcastServer(options: { lateFrom: number; lateMs: number; skip?: boolean }): Promise<FakeServer> {
  const subscribers = new Set<WebSocket>();
  return listen(({ ws, counts }) => {
    ws.send('{"event":"welcome","connection":"x","user":null,"session":"s"}');
    ws.on('close', () => subscribers.delete(ws));
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { action: string; id?: unknown; payload: { channel: string; message?: { b?: number } } };
      if (frame.action === 'subscribe') {
        subscribers.add(ws);
        ws.send(JSON.stringify({ event: 'subscribed', channel: frame.payload.channel, id: frame.id }));
      } else if (frame.action === 'ping') {
        ws.send(JSON.stringify({ event: 'pong', id: frame.id }));
      } else if (frame.action === 'publish') {
        const text = JSON.stringify({ event: 'message', channel: frame.payload.channel, message: frame.payload.message });
        const held = (frame.payload.message?.b ?? 0) >= options.lateFrom;
        for (const sub of subscribers) {
          if (!held) sub.send(text);
          else if (options.skip) bump(counts, 'skipped');
          else setTimeout(() => (bump(counts, 'late'), sub.send(text)), options.lateMs);
        }
      }
    });
  });
}

/** Sends `welcome` (or `firstFrame` instead), then after the first client frame closes with `closeCode`. */
export function rudeServer(options: { firstFrame?: string; closeCode?: number }): Promise<FakeServer> {
  return listen(({ ws }) => {
    ws.send(options.firstFrame ?? '{"event":"welcome"}');
    if (options.closeCode) setTimeout(() => ws.close(options.closeCode), 20);
  });
}
