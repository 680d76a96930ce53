/**
 * Raw TCP peers, for the fuzzer and for tests that send what no well-behaved client library would:
 * hand-made HTTP requests, hand-made WebSocket frames, a reader that stops reading.
 */
import { once } from 'node:events';
import net from 'node:net';

/** An HTTP response as read off the socket. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Parses the head and body of an HTTP/1.1 response held whole in `text`. */
export function parseResponse(text: string): RawResponse {
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: end < 0 ? '' : text.slice(end + 4) };
}

/**
 * Sends `request` (all of it, waiting for the kernel to take it) and reads until the server closes or
 * `timeoutMs` passes; resolves the response read so far. Rejects on a reset before any answer.
 */
export async function rawHttp(port: number, request: string | Buffer, timeoutMs = 5000, localAddress?: string): Promise<RawResponse> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    socket.once('end', resolve);
    socket.once('close', () => resolve());
    socket.once('error', (err) => (chunks.length > 0 ? resolve() : reject(err)));
  });
  socket.write(request);
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  try {
    await ended;
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
  return parseResponse(Buffer.concat(chunks).toString('latin1'));
}

/**
 * One HTTP exchange on a fresh connection: writes `chunks` (pausing `pauseMs` between them, as a slow
 * sender would) and resolves the response as soon as it is whole (by its Content-Length), or what
 * came when the server closed, or null when nothing came within `waitMs` (the connection is then
 * dropped). Never rejects: a reset before an answer is null too.
 */
export async function httpExchange(
  port: number,
  chunks: Buffer[],
  { waitMs = 2000, pauseMs = 0, localAddress }: { waitMs?: number; pauseMs?: number; localAddress?: string } = {},
): Promise<RawResponse | null> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  socket.on('error', () => undefined);
  let received = Buffer.alloc(0);
  let timer: NodeJS.Timeout | undefined;
  const answer = new Promise<RawResponse | null>((resolve) => {
    const finish = (): void => resolve(received.length > 0 ? parseResponse(received.toString('latin1')) : null);
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = parseResponse(received.subarray(0, end + 4).toString('latin1'));
      const length = Number(head.headers['content-length'] ?? NaN);
      if (Number.isFinite(length) && received.length >= end + 4 + length) finish();
    });
    socket.once('close', finish);
    timer = setTimeout(finish, waitMs);
  });
  try {
    await once(socket, 'connect');
    for (const [i, chunk] of chunks.entries()) {
      if (i > 0 && pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
      if (socket.destroyed) break;
      socket.write(chunk);
    }
  } catch {
    // refused or reset: answered null below
  }
  const response = await answer;
  clearTimeout(timer);
  socket.destroy();
  return response;
}

/** A valid WebSocket upgrade request for `path`, with extra header lines. */
export function upgradeRequest(path: string, extra: string[] = [], version = '13'): string {
  return [
    `GET ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    `Sec-WebSocket-Version: ${version}`,
    ...extra,
    '',
    '',
  ].join('\r\n');
}

/** Builds one client frame (masked unless `mask` is false); `rsv` sets the RSV1-3 bits (0-7). */
export function frame(opcode: number, payload: Buffer, { fin = true, mask = true, rsv = 0 } = {}): Buffer {
  const length = payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f)];
  const maskBit = mask ? 0x80 : 0;
  if (length < 126) head.push(maskBit | length);
  else if (length < 65536) head.push(maskBit | 126, length >> 8, length & 0xff);
  else {
    head.push(maskBit | 127, 0, 0, 0, 0);
    head.push((length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const masked = Buffer.alloc(length);
  for (let i = 0; i < length; i++) masked[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([Buffer.from(head), key, masked]);
}

/** A server frame read off the wire. */
export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

/**
 * A WebSocket client on a bare socket: it upgrades by hand, sends any bytes, can stop reading (the
 * kernel buffers fill and the server's backpressure grows), and parses what the server sends.
 */
export class RawSocket {
  private buffer = Buffer.alloc(0);
  private readonly frames: ServerFrame[] = [];
  private waiters: (() => void)[] = [];
  /** Resolves when the TCP connection is gone. */
  readonly gone: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    this.gone = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
      this.parse();
    });
    socket.on('close', () => this.wake());
  }

  /** Connects and upgrades to `path`; rejects unless the answer is 101. */
  static async open(port: number, path: string, localAddress?: string): Promise<RawSocket> {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    await once(socket, 'connect');
    socket.write(upgradeRequest(path));
    let head = Buffer.alloc(0);
    while (head.indexOf('\r\n\r\n') < 0) {
      const [chunk] = (await once(socket, 'data')) as [Buffer];
      head = Buffer.concat([head, chunk]);
    }
    const end = head.indexOf('\r\n\r\n') + 4;
    const status = parseResponse(head.subarray(0, end).toString('latin1')).status;
    if (status !== 101) {
      socket.destroy();
      throw new Error(`HTTP ${status}`);
    }
    socket.pause();
    const raw = new RawSocket(socket);
    raw.buffer = head.subarray(end);
    raw.parse();
    socket.resume();
    return raw;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Sends one masked text frame. */
  sendText(text: string): void {
    this.write(frame(0x1, Buffer.from(text)));
  }

  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  /** Every frame up to and including the close frame, or until the connection is gone or `timeoutMs` passes. */
  async readUntilClose(timeoutMs = 10_000): Promise<{ frames: ServerFrame[]; closeCode: number | null }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const close = this.frames.find((f) => f.opcode === 0x8);
      if (close) {
        const code = close.payload.length >= 2 ? close.payload.readUInt16BE(0) : null;
        return { frames: this.frames.splice(0), closeCode: code };
      }
      if (this.socket.destroyed || Date.now() > deadline) return { frames: this.frames.splice(0), closeCode: null };
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The next text frame, parsed. */
  async nextJson(timeoutMs = 3000): Promise<Record<string, any>> {
    const next = await this.nextFrame(0x1, timeoutMs);
    if (!next) throw new Error('no text frame');
    return JSON.parse(next.payload.toString());
  }

  /** The next frame of `opcode` (frames before it are dropped), or null when none comes in time. */
  async nextFrame(opcode: number, timeoutMs = 3000): Promise<ServerFrame | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex((f) => f.opcode === opcode);
      if (i >= 0) return this.frames.splice(0, i + 1)[i];
      if (this.socket.destroyed || Date.now() > deadline) return null;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private parse(): void {
    let b = this.buffer;
    let parsed = false;
    for (;;) {
      if (b.length < 2) break;
      let length = b[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) break;
        length = b.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) break;
        length = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      if (b.length < offset + length) break;
      this.frames.push({ opcode: b[0] & 0x0f, payload: Buffer.from(b.subarray(offset, offset + length)) });
      b = b.subarray(offset + length);
      parsed = true;
    }
    this.buffer = b;
    if (parsed) this.wake();
  }
}
