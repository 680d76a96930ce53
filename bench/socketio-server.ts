/**
 * The Socket.IO peer for bench-broadcast and `bench-c10k --server socketio`: the server people most often
 * pick, written the way its documentation shows (the `socket.io` package, one room per channel), over the
 * WebSocket transport only, since the swarm does not poll. Events: `echo` (emitted back as it came),
 * `subscribe` (joins the room named, then acks), `publish` ({channel, message}: `message` {channel,
 * message} to that room). Nothing else: no validation, limits or stats, as with bare uWS.
 *
 * `node dist/bench/socketio-server.js [--port N] [--host H]` prints its engine and
 * `listening: ws://<host>:<port>`.
 */
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { Server } from 'socket.io';
import { commandLine } from '../server/command-line.js';

const args = await commandLine('socketio-server', '$0 [flags]\n\nA Socket.IO 4 server, rooms as channels, for the benchmarks to compare against.')
  .option('port', { type: 'number', default: 0, describe: 'TCP port; 0 picks a free one' })
  .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on' })
  .check((a) => {
    if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65_535) throw new Error(`--port must be a whole number from 0 to 65535 (got ${String(a.port)})`);
    return true;
  })
  .parseAsync();

const http = createServer();
const io = new Server(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false, maxHttpBufferSize: 64 * 1024 });

io.on('connection', (socket) => {
  socket.on('echo', (data: unknown) => socket.emit('echo', data));
  socket.on('subscribe', (room: unknown, ack?: (room: unknown) => void) => {
    if (typeof room !== 'string') return;
    void socket.join(room);
    ack?.(room);
  });
  socket.on('publish', (frame: { channel?: unknown; message?: unknown }) => {
    if (typeof frame?.channel === 'string') io.to(frame.channel).emit('message', { channel: frame.channel, message: frame.message });
  });
});

const version = (createRequire(import.meta.url)('socket.io/package.json') as { version: string }).version;
http.once('error', (err) => {
  console.error(`socketio-server: cannot listen on ${args.host}:${args.port} (--host, --port): ${err.message}`);
  process.exit(1);
});
http.listen(args.port, args.host, () => {
  const { port } = http.address() as { port: number };
  console.log(`engine: socket.io ${version} (ws transport only)`);
  console.log(`listening: ws://${args.host}:${port}`);
});
process.on('SIGTERM', () => io.close(() => process.exit(0)));
