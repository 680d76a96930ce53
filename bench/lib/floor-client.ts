/**
 * The floor for bench-swarm: the least a Node process can do for the echo client sequence, so the swarm's
 * figure can be read against what Node and the kernel alone cost on this boot. Each client: net.connect,
 * one fixed upgrade request (one key, its answer not checked), then per round a fixed masked frame, and
 * replies counted by walking frame lengths only; after the last echo, goodbye and the server's close
 * frame, a close frame back, and the server ends the connection. No histograms, no reports, no time
 * limits, no error kinds: nothing a load generator needs beyond the bytes.
 *
 * `node floor-client.js <url> <clients> <ramp s> <delay s> <rounds>`; prints `completed <n>` and exits.
 */
import { connect } from 'node:net';

const [url, clientsText, rampText, delayText, roundsText] = process.argv.slice(2);
const target = new URL(url);
const clients = Number(clientsText);
const rampMs = Number(rampText) * 1000;
const delayMs = Number(delayText) * 1000;
const rounds = Number(roundsText);
const request =
  `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nUpgrade: websocket\r\n` +
  'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
/** A masked text frame with a zero mask: the payload goes as it is. */
const frame = (text: string): Buffer => Buffer.concat([Buffer.from([0x81, 0x80 | text.length, 0, 0, 0, 0]), Buffer.from(text)]);
const CLOSE = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);

let completed = 0;
let ended = 0;
const start = Date.now();

function client(index: number): void {
  const socket = connect({ host: target.hostname, port: Number(target.port), noDelay: true });
  let upgraded = false;
  let frames = 0;
  const slot = start + (index * rampMs) / clients;
  const send = (round: number): void => {
    setTimeout(() => socket.write(frame(`{"client":${index},"round":${round}}`)), Math.max(0, slot + round * delayMs - Date.now()));
  };
  socket.on('connect', () => socket.write(request));
  socket.on('data', (data: Buffer) => {
    let at = 0;
    if (!upgraded) {
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      upgraded = true;
      at = end + 4;
    }
    for (; at + 1 < data.length; at += 2 + (data[at + 1] & 0x7f)) {
      frames++; // welcome, each echo, goodbye, close
      if (frames <= rounds) send(frames);
      else if (frames === rounds + 3) socket.write(CLOSE);
    }
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    if (frames === rounds + 3) completed++;
    if (++ended === clients) {
      console.log(`completed ${completed}`);
      process.exit(0);
    }
  });
}

for (let i = 0; i < clients; i++) setTimeout(() => client(i), Math.max(0, start + (i * rampMs) / clients - Date.now()));
