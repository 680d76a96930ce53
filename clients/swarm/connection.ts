/**
 * One client socket as a scenario sees it: open it, await the next frame or the close with a time limit,
 * and have every failure arrive as a SwarmError of a known kind. Frames are queued until a scenario reads
 * them, or handed to a listener for scenarios that stream (broadcast).
 *
 * It is a raw TCP socket with the handshake (handshake.ts) and framing (frame-codec.ts) done here, not
 * the `ws` client: the same bytes on the wire, for about a third of the swarm's CPU per client sequence
 * (`make bench-swarm`). Time limits go through one sweep per process (deadlines.ts), not a timer each.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { watch, unwatch, type Expiring } from './deadlines.js';
import { encodeClose, encodeFrame, FrameDecoder, OPCODE, type FrameSink } from './frame-codec.js';
import { checkUpgradeResponse, upgradeRequest, upgradeTarget } from './handshake.js';
import { SwarmError, epochMicros, type Counters } from './metrics.js';

/** What a close looked like from the client. */
export interface CloseInfo {
  code: number;
  reason: string;
}

/** What the swarm's client sockets are, as the summary and CSVs name them. */
export const CLIENT_SOCKETS = 'raw TCP, the swarm\'s own handshake and framing';

/**
 * Every plain socket reads into this one buffer (net's `onread`), and its frames are decoded before the
 * next read: no Buffer per read and no stream machinery between the kernel and the decoder.
 */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

/** A listener of raw text frames: bytes `start` to `end` of `data`, valid only during the call. */
export type RawListener = (data: Buffer, start: number, end: number) => void;

/** The largest message a client accepts, bytes. */
const MAX_PAYLOAD = 64 * 1024 * 1024;
/** A binary frame as the queue holds it: the contract sends text, and a scenario reading one fails. */
const BINARY_MARK = '\u0000binary:';

type Waiter = { resolve: (frame: string) => void; reject: (err: SwarmError) => void; what: string };
type OpenOptions = { localAddress?: string; localPort?: number; timeoutMs: number };

export class Connection implements Expiring {
  private readonly queue: string[] = [];
  private waiter: Waiter | null = null;
  private closeInfo: CloseInfo | null = null;
  private readonly closeWaiters: ((info: CloseInfo) => void)[] = [];
  private listener: ((frame: string) => void) | null = null;
  private rawListener: RawListener | null = null;
  /** Answers the protocol's own control frames (see {@link answer}). */
  private responder: ((data: Buffer, start: number, end: number) => string | null) | null = null;
  /** Epoch µs of the read being decoded; 0 until asked for (see {@link readAt}). */
  private readAtMicros = 0;
  /** The close frame the server sent, kept until the TCP connection ends. */
  private closeFrame: CloseInfo | null = null;
  private closeSent = false;
  private open = false;
  private head: Buffer | null = null;
  private readonly decoder: FrameDecoder;
  /** performance.now() ms by which the current wait (one at a time) must end (see deadlines.ts). */
  deadline = Infinity;
  private onExpire: (() => void) | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly counters: Counters,
  ) {
    const sink: FrameSink = {
      text: (data, start, end) => {
        if (this.responder) {
          const reply = this.responder(data, start, end);
          if (reply !== null) return void this.sendFrame(reply);
        }
        counters.received++;
        if (this.rawListener) this.rawListener(data, start, end);
        else this.deliver(data.toString('utf8', start, end));
      },
      binary: (data) => {
        counters.received++;
        this.deliver(`${BINARY_MARK}${data.length}`);
      },
      close: (code, reason) => {
        this.closeFrame = { code, reason };
        // Answer with the same code, as the RFC asks; the server then ends the TCP connection.
        this.sendClose(code === 1005 ? 1000 : code);
      },
      ping: (payload) => {
        if (!this.closeSent && !this.closeInfo) socket.write(encodeFrame(OPCODE.pong, payload));
      },
      error: (message) => {
        this.closeFrame ??= { code: 1002, reason: message };
        socket.destroy();
      },
    };
    this.decoder = new FrameDecoder(sink, MAX_PAYLOAD);
  }

  /**
   * Opens a socket; counts it as opening, then connected or failed. With `localPort` the socket binds
   * that port of `localAddress`; if something else holds it, the kernel picks one instead.
   */
  static open(url: string, counters: Counters, options: OpenOptions): Promise<Connection> {
    counters.opening++;
    return new Promise((resolve, reject) => Connection.start(url, counters, options, resolve, reject));
  }

  private static start(url: string, counters: Counters, options: OpenOptions, resolve: (c: Connection) => void, reject: (e: SwarmError) => void): void {
    const target = upgradeTarget(url);
    const { request, accept } = upgradeRequest(target);
    const socketOptions = { host: target.host, port: target.port, localAddress: options.localAddress, localPort: options.localPort, noDelay: true };
    let onBytes: (data: Buffer, length: number) => void = () => undefined;
    const socket = target.tls
      ? tlsConnect({ ...socketOptions, servername: target.host })
      : netConnect({ ...socketOptions, onread: { buffer: READ_BUFFER, callback: (length: number) => (onBytes(READ_BUFFER, length), true) } });
    if (target.tls) socket.on('data', (chunk: Buffer) => onBytes(chunk, chunk.length));
    const conn = new Connection(socket, counters);
    let settled = false;
    const fail = (err: SwarmError): void => {
      if (settled) return;
      settled = true;
      conn.clearWait();
      counters.opening--;
      counters.failed++;
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.destroy();
      reject(err);
    };
    conn.wait(options.timeoutMs, () => fail(new SwarmError('timeout', `no upgrade within ${options.timeoutMs} ms`)));
    socket.on('error', (err: Error & { code?: string }) => {
      if (conn.open) return; // after open, 'close' follows and tells the scenario
      if (err.code === 'EADDRINUSE' && options.localPort !== undefined && !settled) {
        settled = true;
        conn.clearWait();
        socket.removeAllListeners();
        socket.destroy();
        Connection.start(url, counters, { ...options, localPort: undefined }, resolve, reject);
        return;
      }
      fail(classifyConnectError(err));
    });
    socket.once(target.tls ? 'secureConnect' : 'connect', () => socket.write(request));
    onBytes = (chunk, length) => {
      if (conn.open) {
        conn.readAtMicros = 0;
        return conn.decoder.push(chunk, length);
      }
      const head = conn.head ? Buffer.concat([conn.head, chunk.subarray(0, length)]) : chunk.subarray(0, length);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        conn.head = head.length > 16_384 ? null : Buffer.from(head);
        if (head.length > 16_384) fail(new SwarmError('protocol_mismatch', 'upgrade response head above 16 KiB'));
        return;
      }
      conn.head = null;
      const result = checkUpgradeResponse(head.toString('latin1', 0, end), accept);
      if (!result.ok) return fail(new SwarmError(result.status === 101 || result.status === null ? 'protocol_mismatch' : 'rejected', result.message));
      settled = true;
      conn.clearWait();
      conn.open = true;
      counters.opening--;
      counters.connected++;
      socket.on('close', () => conn.ended());
      resolve(conn);
      // Frames that came with the response (the welcome, often) are read once the scenario holds the connection.
      if (end + 4 < head.length) conn.decoder.push(Buffer.from(head.subarray(end + 4)));
    };
    socket.once('close', () => {
      if (!conn.open) fail(new SwarmError('unexpected_close', 'the server closed the connection during the upgrade'));
    });
  }

  /** Sends a text frame. */
  send(text: string): void {
    this.counters.sent++;
    this.sendFrame(text);
  }

  /**
   * Has `responder` look at every later text frame first: when it returns a text, that is sent back at
   * once and the frame goes no further (a protocol's keep-alive, such as Engine.IO's ping); neither
   * counts as a frame sent or received.
   */
  answer(responder: (data: Buffer, start: number, end: number) => string | null): void {
    this.responder = responder;
  }

  private sendFrame(text: string): void {
    if (!this.closeInfo && !this.closeSent) this.socket.write(encodeFrame(OPCODE.text, text));
  }

  /**
   * Sends every frame `fill` sends in one write: the TCP socket stays corked until `fill` returns. A
   * publisher that wakes up to several due messages so costs the kernel one loopback round, not one per
   * frame, as a batching producer would.
   */
  batch(fill: () => void): void {
    this.socket.cork();
    try {
      fill();
    } finally {
      this.socket.uncork();
    }
  }

  /** The next text frame; rejects on timeout, on close, and on a binary frame (the contract sends text). */
  async next(timeoutMs: number, what = 'a frame'): Promise<string> {
    const frame = this.queue.shift() ?? (await this.waitFrame(timeoutMs, what));
    if (frame.startsWith(BINARY_MARK)) throw new SwarmError('protocol_mismatch', `binary frame while awaiting ${what}`);
    return frame;
  }

  /** The next frame parsed as a JSON object; anything else is a protocol mismatch. */
  async nextJson(timeoutMs: number, what = 'a frame'): Promise<Record<string, unknown>> {
    const frame = await this.next(timeoutMs, what);
    try {
      const value: unknown = JSON.parse(frame);
      if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
    } catch {
      // reported below
    }
    throw new SwarmError('protocol_mismatch', `expected ${what} as a JSON object, got ${frame.slice(0, 80)}`);
  }

  /** Hands every later frame (and any queued one) to `listener` instead of the queue. */
  stream(listener: (frame: string) => void): void {
    this.listener = listener;
    for (const frame of this.queue.splice(0)) listener(frame);
  }

  /**
   * Hands every later text frame to `listener` as bytes, not as a string (a queued one too); for a
   * scenario that reads a field or two of each of very many frames. Time them with {@link readAt}.
   */
  streamRaw(listener: RawListener): void {
    this.rawListener = listener;
    for (const frame of this.queue.splice(0)) {
      const bytes = Buffer.from(frame);
      listener(bytes, 0, bytes.length);
    }
  }

  /** Epoch µs at which the bytes being decoded were read: every frame of one read arrived together. */
  get readAt(): number {
    return (this.readAtMicros ||= epochMicros());
  }

  /** Resolves when the socket has closed; rejects if that takes longer than `timeoutMs`. */
  closed(timeoutMs: number): Promise<CloseInfo> {
    if (this.closeInfo) return Promise.resolve(this.closeInfo);
    return new Promise((resolve, reject) => {
      this.wait(timeoutMs, () => {
        reject(new SwarmError('timeout', `no close within ${timeoutMs} ms`));
      });
      this.closeWaiters.push(resolve);
    });
  }

  /** Calls `listener` once the socket has closed (at once if it has). */
  onClose(listener: (info: CloseInfo) => void): void {
    if (this.closeInfo) listener(this.closeInfo);
    else this.closeWaiters.push(listener);
  }

  /** Starts a clean close (1000) and waits for it to finish. */
  async close(timeoutMs: number): Promise<CloseInfo> {
    this.sendClose(1000);
    return this.closed(timeoutMs);
  }

  /** Drops the socket at once (errors, the run's deadline). */
  terminate(): void {
    if (!this.closeInfo) this.socket.destroy();
  }

  get isClosed(): boolean {
    return this.closeInfo !== null;
  }

  // Expiring: the sweep calls this once the deadline has passed.

  expire(): void {
    const onExpire = this.onExpire;
    this.clearWait();
    onExpire?.();
  }

  private sendClose(code: number): void {
    if (this.closeSent || this.closeInfo) return;
    this.closeSent = true;
    this.socket.write(encodeClose(code));
  }

  private deliver(frame: string): void {
    if (this.listener) return this.listener(frame);
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = null;
      this.clearWait();
      waiter.resolve(frame);
    } else {
      this.queue.push(frame);
    }
  }

  /** The TCP connection has closed: with the server's close frame's code, or 1006 without one. */
  private ended(): void {
    if (this.closeInfo) return;
    this.counters.connected--;
    this.counters.closed++;
    this.closeInfo = this.closeFrame ?? { code: 1006, reason: '' };
    this.clearWait();
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.reject(new SwarmError('unexpected_close', `closed with ${this.closeInfo.code} ${this.closeInfo.reason} while ${waiter.what} was awaited`));
    for (const resolve of this.closeWaiters.splice(0)) resolve(this.closeInfo);
  }

  private wait(timeoutMs: number, onExpire: () => void): void {
    this.deadline = performance.now() + timeoutMs;
    this.onExpire = onExpire;
    watch(this);
  }

  private clearWait(): void {
    if (this.onExpire === null) return;
    this.onExpire = null;
    this.deadline = Infinity;
    unwatch(this);
  }

  private waitFrame(timeoutMs: number, what: string): Promise<string> {
    if (this.closeInfo) {
      return Promise.reject(new SwarmError('unexpected_close', `closed with ${this.closeInfo.code} before ${what}`));
    }
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject, what };
      this.wait(timeoutMs, () => {
        this.waiter = null;
        reject(new SwarmError('timeout', `no ${what} within ${timeoutMs} ms`));
      });
    });
  }
}

/** Sorts a connect failure into an error kind by its errno code. */
export function classifyConnectError(err: Error & { code?: string }): SwarmError {
  switch (err.code) {
    case 'ECONNREFUSED':
      return new SwarmError('refused', err.message);
    case 'EADDRNOTAVAIL':
    case 'EADDRINUSE':
      return new SwarmError('addr_not_available', err.message);
    case 'ETIMEDOUT':
      return new SwarmError('timeout', err.message);
    case 'ECONNRESET':
    case 'EPIPE':
      return new SwarmError('unexpected_close', err.message);
  }
  return new SwarmError('other', err.message);
}
