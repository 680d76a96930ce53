/**
 * The floor for bench-swarm: the least a Node process can do for the echo client sequence, so the swarm's
 * figure can be read against what Node and the kernel alone cost on this boot. Each client: net.connect,
 * one fixed upgrade request (one key, its answer not checked), then per round a fixed masked frame, and
 * replies counted by walking frame lengths only; after the last echo, goodbye and the server's close
 * frame, a close frame back, and the server ends the connection. No histograms, no reports, no time
 * limits, no error kinds: nothing a load generator needs beyond the bytes.
 *
 * `node floor-client.js <url> <clients> <ramp s> <delay s> <rounds>`; prints `completed <n>` and exits.
 *
 * `node floor-client.js broadcast <url> <subscribers> <rate> <seconds>`: the broadcast floor. Subscribers
 * to /pubsub's `bench` channel that only count the frames they read (walking frame lengths), and one
 * publisher sending `rate` messages a second from a 5 ms interval; prints `frames <n> cpu_us <m>`: the
 * frames read and this process's CPU over the publishing seconds, connects and subscribes excluded.
 */
import { connect } from 'node:net';

/** The upgrade request for `target`, one fixed key. */
const upgradeOf = (target: URL): string =>
  `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nUpgrade: websocket\r\n` +
  'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
/** A masked text frame with a zero mask: the payload goes as it is. */
const frame = (text: string): Buffer => Buffer.concat([Buffer.from([0x81, 0x80 | text.length, 0, 0, 0, 0]), Buffer.from(text)]);
const CLOSE = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);

function echoFloor([url, clientsText, rampText, delayText, roundsText]: string[]): void {
  const target = new URL(url);
  const clients = Number(clientsText);
  const rampMs = Number(rampText) * 1000;
  const delayMs = Number(delayText) * 1000;
  const rounds = Number(roundsText);
  const request = upgradeOf(target);
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
}

async function broadcastFloor([url, subscribersText, rateText, secondsText]: string[]): Promise<never> {
  const target = new URL(url);
  const subscribers = Number(subscribersText);
  const rate = Number(rateText);
  const seconds = Number(secondsText);
  const upgrade = upgradeOf(target);
  let frames = 0;
  // Read as the swarm does, into one shared buffer (net's onread): the least Node does per read.
  const buffer = Buffer.allocUnsafe(256 * 1024);
  const open = (onFrames: (count: number) => void): Promise<ReturnType<typeof connect>> =>
    new Promise((resolve) => {
      let upgraded = false;
      const read = (length: number): boolean => {
        let at = 0;
        if (!upgraded) {
          const end = buffer.indexOf('\r\n\r\n');
          if (end < 0 || end > length) return true;
          upgraded = true;
          at = end + 4;
          resolve(socket);
        }
        let count = 0;
        for (; at + 1 < length; at += 2 + (buffer[at + 1] & 0x7f)) count++;
        onFrames(count);
        return true;
      };
      const socket = connect({ host: target.hostname, port: Number(target.port), noDelay: true, onread: { buffer, callback: read } });
      socket.on('connect', () => socket.write(upgrade));
    });
  const subscribed: Promise<void>[] = [];
  for (let i = 0; i < subscribers; i++) {
    let seen = 0;
    let ack: () => void;
    subscribed.push(new Promise<void>((resolve) => (ack = resolve)));
    const socket = await open((count) => {
      seen += count;
      if (seen >= 2) ack(); // welcome, then the subscribe ack
      else return;
      frames += count;
    });
    socket.write(frame('{"action":"subscribe","payload":{"channel":"bench"},"id":1}'));
  }
  await Promise.all(subscribed);
  frames = 0;
  const publisher = await open(() => undefined);
  const before = process.cpuUsage();
  const started = Date.now();
  let sent = 0;
  // Whatever is due goes out each 5 ms, so a late timer does not lower the rate.
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - started) * rate) / 1000);
    for (; sent < due; sent++) publisher.write(frame(`{"action":"publish","payload":{"channel":"bench","message":{"t":${Date.now()}}}}`));
  }, 5);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  clearInterval(timer);
  const used = process.cpuUsage(before);
  console.log(`frames ${frames} cpu_us ${used.user + used.system}`);
  process.exit(0);
}

if (process.argv[2] === 'broadcast') await broadcastFloor(process.argv.slice(3));
else echoFloor(process.argv.slice(2));
