/**
 * The comparison server on the `ws` package, written the way a competent `ws` user would: one
 * http.Server, `noServer` WebSocketServers per path, a Map of channel -> Set of sockets, each message
 * encoded once per publish and sent to every subscriber. It speaks the same codec as the main server
 * (`/pubsub`: subscribe, unsubscribe, publish, ping, slow on a timer; `/echo` with rounds), so a
 * benchmark compares engines and fan-out, not parsers.
 *
 * `serial: true` answers a connection's `slow` requests one after another, as a thread-per-request
 * server of the seeds would; by default they run concurrently.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { parseRounds } from '../endpoints/echo.js';
import { events, mayClientPublish, maySubscribe, parseClientFrame, type ErrorCode, type RequestId } from '../protocol/index.js';

/** Options of the baseline server. */
export interface BaselineOptions {
  /** TCP port; 0 picks a free one. Default 9001. */
  port: number;
  /** Default `0.0.0.0`. */
  host: string;
  /** Answer a connection's slow requests one after another. Default false. */
  serial: boolean;
  /** Largest frame, bytes. Default 65536. */
  maxPayload: number;
  /** Bytes queued for a socket past which published messages to it are dropped (counted). Default 1 MiB. */
  maxBackpressure: number;
}

export const DEFAULT_BASELINE_OPTIONS: Readonly<BaselineOptions> = Object.freeze({
  port: 9001,
  host: '0.0.0.0',
  serial: false,
  maxPayload: 65_536,
  maxBackpressure: 1_048_576,
});

interface Client {
  readonly id: string;
  readonly session: string;
  readonly channels: Set<string>;
  /** Tail of the serial slow-request queue. */
  slowQueue: Promise<void>;
}

/** The baseline server's handle. */
export interface BaselineServer {
  readonly options: BaselineOptions;
  listen(): Promise<{ port: number }>;
  /** Sends goodbye to everyone, closes with 1001 and stops. */
  close(): Promise<void>;
}

export function createBaselineServer(input: Partial<BaselineOptions> = {}): BaselineServer {
  const options: BaselineOptions = { ...DEFAULT_BASELINE_OPTIONS, ...input };
  const counters = { connections: 0, messages_in: 0, messages_out: 0, dropped: 0, published: 0 };
  const channels = new Map<string, Set<WebSocket>>();
  const wsOptions = { noServer: true, maxPayload: options.maxPayload, perMessageDeflate: false, clientTracking: true };
  const pubsub = new WebSocketServer(wsOptions);
  const echo = new WebSocketServer(wsOptions);

  const httpServer = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/stats') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      // The keys are the pub/sub server's own (snake_case), so one reader serves both.
      res.end(JSON.stringify({ ...counters, engine: { name: 'ws-baseline' }, memory: { rss: process.memoryUsage().rss }, pid: process.pid }));
    } else if (req.method === 'GET' && req.url === '/health') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ok"}');
    } else {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":"not_found"}');
    }
  });

  httpServer.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/pubsub') {
      pubsub.handleUpgrade(req, socket, head, (ws) => openPubSub(ws));
    } else if (url.pathname === '/echo') {
      const rounds = parseRounds(url.searchParams.get('rounds') ?? undefined);
      if (typeof rounds === 'string') return refuse(socket, '400 Bad Request', rounds);
      echo.handleUpgrade(req, socket, head, (ws) => openEcho(ws, rounds === 0 ? Infinity : rounds));
    } else {
      refuse(socket, '404 Not Found', 'no such path');
    }
  });

  function send(ws: WebSocket, data: string | Buffer): void {
    counters.messages_out++;
    // A pre-encoded Buffer would go out as a binary frame unless told otherwise.
    ws.send(data, { binary: false });
  }

  function openPubSub(ws: WebSocket): void {
    const client: Client = {
      id: randomBytes(6).toString('hex'),
      session: randomBytes(12).toString('base64url'),
      channels: new Set(),
      slowQueue: Promise.resolve(),
    };
    counters.connections++;
    send(ws, events.welcome(client.id, null, client.session));
    ws.on('message', (data, isBinary) => onPubSubMessage(ws, client, data, isBinary));
    ws.on('close', () => {
      counters.connections--;
      for (const channel of client.channels) unsubscribe(ws, channel);
    });
    ws.on('error', () => {});
  }

  function onPubSubMessage(ws: WebSocket, client: Client, data: RawData, isBinary: boolean): void {
    counters.messages_in++;
    const fail = (code: ErrorCode, text: string, id: RequestId) => send(ws, events.error(code, text, id));
    if (isBinary) return fail('binary_not_supported', 'binary frames are not part of the protocol', null);
    const request = parseClientFrame(data.toString());
    switch (request.action) {
      case 'error':
        return fail(request.code, request.message, request.id);
      case 'ping':
        return send(ws, events.pong(request.id));
      case 'subscribe':
        if (!maySubscribe(request.channel.facility, { user: null, session: client.session })) {
          return fail('forbidden', `this connection may not subscribe to ${request.channel.name}`, request.id);
        }
        client.channels.add(request.channel.name);
        subscribe(ws, request.channel.name);
        return send(ws, events.subscribed(request.channel.name, request.id));
      case 'unsubscribe':
        if (client.channels.delete(request.channel.name)) unsubscribe(ws, request.channel.name);
        return send(ws, events.unsubscribed(request.channel.name, request.id));
      case 'publish':
        if (!mayClientPublish(request.channel.facility, true)) {
          return fail('forbidden', 'server-side channel', request.id);
        }
        publish(request.channel.name, request.messageJson);
        if (request.id !== null) send(ws, events.published(request.channel.name, request.id));
        return;
      case 'slow': {
        const { ms, id } = request;
        const answer = async () => {
          await sleep(ms);
          if (ws.readyState === ws.OPEN) send(ws, events.slowDone(ms, id));
        };
        if (options.serial) client.slowQueue = client.slowQueue.then(answer);
        else void answer();
        return;
      }
    }
  }

  function subscribe(ws: WebSocket, channel: string): void {
    let subscribers = channels.get(channel);
    if (!subscribers) channels.set(channel, (subscribers = new Set()));
    subscribers.add(ws);
  }

  function unsubscribe(ws: WebSocket, channel: string): void {
    const subscribers = channels.get(channel);
    if (!subscribers) return;
    subscribers.delete(ws);
    if (subscribers.size === 0) channels.delete(channel);
  }

  function publish(channel: string, messageJson: string): void {
    counters.published++;
    const subscribers = channels.get(channel);
    if (!subscribers) return;
    // Encoded once; ws frames it per socket.
    const frame = Buffer.from(events.message(channel, messageJson));
    for (const ws of subscribers) {
      if (ws.bufferedAmount > options.maxBackpressure) counters.dropped++;
      else send(ws, frame);
    }
  }

  function openEcho(ws: WebSocket, rounds: number): void {
    let remaining = rounds;
    counters.connections++;
    send(ws, events.ECHO_WELCOME);
    ws.on('message', (data, isBinary) => {
      counters.messages_in++;
      if (remaining === 0) return;
      counters.messages_out++;
      ws.send(data, { binary: isBinary });
      if (--remaining === 0) {
        send(ws, events.ECHO_GOODBYE);
        ws.close(1000);
      }
    });
    ws.on('close', () => counters.connections--);
    ws.on('error', () => {});
  }

  return {
    options,
    listen: () =>
      new Promise((resolve, reject) => {
        httpServer.once('error', reject);
        httpServer.listen(options.port, options.host, () => {
          httpServer.off('error', reject);
          resolve({ port: (httpServer.address() as AddressInfo).port });
        });
      }),
    close: async () => {
      for (const ws of [...pubsub.clients, ...echo.clients]) {
        ws.send(events.goodbye('shutdown'));
        ws.close(1001, 'shutdown');
      }
      httpServer.close();
      await sleep(50);
      for (const ws of [...pubsub.clients, ...echo.clients]) ws.terminate();
      httpServer.closeAllConnections();
    },
  };
}

function refuse(socket: import('node:stream').Duplex, status: string, text: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
}
