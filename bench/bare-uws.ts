/**
 * The bare-uWS reference for bench-broadcast and bench-swarm: the least a uWebSockets.js server can do and
 * still let the swarm's scenarios run. /echo sends welcome, echoes `rounds` frames (`?rounds=N`, default 3),
 * then goodbye and a 1000 close, as our /echo does, with no limits or stats. /pubsub sends welcome, answers subscribe with `subscribed`, and turns a
 * publish into one native `app.publish`: no validation, limits, stats, cache or backpressure policy. Its
 * throughput is the ceiling that our server's protocol work is measured against. Like our server, it
 * makes a turn's publishes together from setImmediate, so uWS writes each subscriber's copies at once
 * (an `app.publish` inside the message handler is sent right away, one send() per copy).
 *
 * `node dist/bench/bare-uws.js [port]` prints `listening: ws://127.0.0.1:<port>`.
 */
import { loadEngine, type EngineInfo, type Uws } from '../server/engine.js';
import { DEFAULT_OPTIONS } from '../server/options.js';

let engine: { uws: Uws; info: EngineInfo };
try {
  engine = loadEngine(DEFAULT_OPTIONS.maxHeaderSize);
} catch (err) {
  console.error(`bare-uws: ${(err as Error).message}`);
  process.exit(2);
}
const { uws, info } = engine;
const decoder = new TextDecoder();
const app = uws.App();
/** Topic and frame, in turn, of this event-loop turn's publishes. */
let outbox: string[] = [];
const flush = (): void => {
  const batch = outbox;
  outbox = [];
  for (let i = 0; i < batch.length; i += 2) app.publish(batch[i], batch[i + 1]);
};

app.ws<{ remaining: number }>('/echo', {
  maxPayloadLength: 64 * 1024,
  idleTimeout: 0,
  upgrade: (res, req, context) => {
    const rounds = Number(req.getQuery('rounds') || 3);
    res.upgrade({ remaining: rounds > 0 ? rounds : Infinity }, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
  },
  open: (ws) => void ws.send('{"event":"welcome"}'),
  message: (ws, data, isBinary) => {
    const conn = ws.getUserData();
    if (conn.remaining === 0) return;
    ws.send(data, isBinary);
    if (--conn.remaining === 0) {
      ws.send('{"event":"goodbye"}');
      ws.end(1000);
    }
  },
});

app.ws('/pubsub', {
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 16 * 1024 * 1024,
  idleTimeout: 0,
  open: (ws) => void ws.send('{"event":"welcome"}'),
  message: (ws, data) => {
    const frame = JSON.parse(decoder.decode(data)) as { action: string; id?: unknown; payload: { channel: string; message?: unknown } };
    const channel = frame.payload.channel;
    if (frame.action === 'subscribe') {
      ws.subscribe(channel);
      ws.send(`{"event":"subscribed","channel":${JSON.stringify(channel)},"id":${JSON.stringify(frame.id ?? null)}}`);
    } else if (frame.action === 'publish') {
      if (outbox.length === 0) setImmediate(flush);
      outbox.push(channel, `{"event":"message","channel":${JSON.stringify(channel)},"message":${JSON.stringify(frame.payload.message)}}`);
    }
  },
});
app.get('/stats', (res) => void res.end(JSON.stringify({ engine: { name: info.name }, pid: process.pid })));

const port = Number(process.argv[2] ?? 0);
app.listen('127.0.0.1', port, (listenSocket) => {
  if (!listenSocket) {
    console.error(`bare-uws: cannot listen on port ${port}`);
    process.exit(1);
  }
  console.log(`engine: ${info.description}`);
  console.log(`listening: ws://127.0.0.1:${uws.us_socket_local_port(listenSocket)}`);
});
process.on('SIGTERM', () => process.exit(0));
