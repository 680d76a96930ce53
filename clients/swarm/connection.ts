/**
 * One client socket as a scenario sees it: open it, await the next frame or the close with a time limit,
 * and have every failure arrive as a SwarmError of a known kind. Frames are queued until a scenario reads
 * them, or handed to a listener for scenarios that stream (broadcast).
 *
 * It is a raw TCP socket (sockets/: a libuv handle, or a net.Socket) with the handshake (handshake.ts)
 * and framing (frame-codec.ts) done here, not the `ws` client: the same bytes on the wire, for about a
 * third of the swarm's CPU per client sequence (`make bench-swarm`). Time limits go through one sweep
 * per process (deadlines.ts), not a timer each.
 */
import { watch, unwatch, type Expiring } from './deadlines.js';
import { encodeClose, encodeFrame, FrameDecoder, OPCODE, type FrameSink } from './frame-codec.js';
import { checkUpgradeResponse, upgradeRequest, upgradeTarget, type UpgradeTarget } from './handshake.js';
import { SwarmError, epochMicros, type Counters } from './metrics.js';
import { openSocket } from './sockets/open.js';
import type { ClientSocket, ClientSocketDriver, SocketError, SocketOwner } from './sockets/types.js';

/** What a close looked like from the client. */
export interface CloseInfo {
  code: number;
  reason: string;
}

/** What hears of a connection's close: an object, so that a listener per client needs no closure. */
export interface CloseListener {
  connectionClosed(conn: Connection, info: CloseInfo): void;
}

/**
 * What reads raw text frames: bytes `start` to `end` of `data`, valid only during the call. An object
 * with a method rather than a function, so a scenario's per-client state can be the reader itself and
 * hold no closure while it waits.
 */
export interface RawReader {
  rawFrame(data: Buffer, start: number, end: number): void;
}

/** The largest message a client accepts, bytes. */
const MAX_PAYLOAD = 64 * 1024 * 1024;
/** A binary frame as the queue holds it: the contract sends text, and a scenario reading one fails. */
const BINARY_MARK = '\u0000binary:';

type Waiter = { resolve: (frame: string) => void; reject: (err: SwarmError) => void; what: string };
type OpenOptions = { localAddress?: string; localPort?: number; timeoutMs: number; sockets: ClientSocketDriver };
/** What a connection holds only until its upgrade is answered. */
type Opening = { url: string; options: OpenOptions; request: string; accept: string; resolve: (c: Connection) => void; reject: (e: SwarmError) => void };

export class Connection implements Expiring, FrameSink, SocketOwner {
  /** Frames no one awaited yet; null until the first (most clients await each frame). */
  private queue: string[] | null = null;
  private waiter: Waiter | null = null;
  private closeInfo: CloseInfo | null = null;
  /** Null until one listens; each added one makes a new array of the exact size (a push would reserve 17). */
  private closeListeners: CloseListener[] | null = null;
  private listener: ((frame: string) => void) | null = null;
  private rawReader: RawReader | null = null;
  /** Answers the protocol's own control frames (see {@link answer}). */
  private responder: ((data: Buffer, start: number, end: number) => string | null) | null = null;
  /** Epoch µs of the read being decoded; 0 until asked for (see {@link readAt}). */
  private readAtMicros = 0;
  /** The close frame the server sent, kept until the TCP connection ends. */
  private closeFrame: CloseInfo | null = null;
  private closeSent = false;
  private open = false;
  private head: Buffer | null = null;
  private opening: Opening | null;
  private readonly decoder: FrameDecoder;
  /** performance.now() ms by which the current wait (one at a time) must end (see deadlines.ts). */
  deadline = Infinity;
  private onExpire: (() => void) | null = null;
  private readonly socket: ClientSocket;

  private constructor(
    target: UpgradeTarget,
    private readonly counters: Counters,
    opening: Opening,
  ) {
    this.opening = opening;
    this.decoder = new FrameDecoder(this, MAX_PAYLOAD);
    const { localAddress, localPort, sockets } = opening.options;
    this.socket = openSocket(sockets, { host: target.host, port: target.port, tls: target.tls, localAddress, localPort }, this);
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
    const conn = new Connection(target, counters, { url, options, request, accept, resolve, reject });
    conn.wait(options.timeoutMs, () => conn.fail(new SwarmError('timeout', `no upgrade within ${options.timeoutMs} ms`)));
  }

  // The socket's events (SocketOwner) and the frame decoder's (FrameSink): not for scenarios.

  /** @internal */
  socketConnected(): void {
    if (this.opening) this.socket.write(this.opening.request);
  }

  /** @internal */
  socketRead(chunk: Buffer, length: number): void {
    if (this.open) {
      this.readAtMicros = 0;
      return this.decoder.push(chunk, length);
    }
    const opening = this.opening;
    if (!opening) return;
    const head = this.head ? Buffer.concat([this.head, chunk.subarray(0, length)]) : chunk.subarray(0, length);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      this.head = head.length > 16_384 ? null : Buffer.from(head);
      if (head.length > 16_384) this.fail(new SwarmError('protocol_mismatch', 'upgrade response head above 16 KiB'));
      return;
    }
    this.head = null;
    const result = checkUpgradeResponse(head.toString('latin1', 0, end), opening.accept);
    if (!result.ok) return this.fail(new SwarmError(result.status === 101 || result.status === null ? 'protocol_mismatch' : 'rejected', result.message));
    this.opening = null;
    this.clearWait();
    this.open = true;
    this.counters.opening--;
    this.counters.connected++;
    opening.resolve(this);
    // Frames that came with the response (the welcome, often) are read once the scenario holds the connection.
    if (end + 4 < head.length) this.decoder.push(Buffer.from(head.subarray(end + 4)));
  }

  /** @internal */
  socketFailed(err: SocketError): void {
    if (this.open) return; // after open, 'close' follows and tells the scenario
    const opening = this.opening;
    if (!opening) return;
    if (err.code === 'EADDRINUSE' && opening.options.localPort !== undefined) {
      this.opening = null;
      this.clearWait();
      this.socket.abandon();
      Connection.start(opening.url, this.counters, { ...opening.options, localPort: undefined }, opening.resolve, opening.reject);
      return;
    }
    this.fail(classifyConnectError(err));
  }

  /** @internal */
  socketClosed(): void {
    if (this.open) this.ended();
    else this.fail(new SwarmError('unexpected_close', 'the server closed the connection during the upgrade'));
  }

  /** @internal */
  frameText(data: Buffer, start: number, end: number): void {
    if (this.responder) {
      const reply = this.responder(data, start, end);
      if (reply !== null) return void this.sendFrame(reply);
    }
    this.counters.received++;
    if (this.rawReader) this.rawReader.rawFrame(data, start, end);
    else this.deliver(data.toString('utf8', start, end));
  }

  /** @internal */
  frameBinary(data: Buffer): void {
    this.counters.received++;
    this.deliver(`${BINARY_MARK}${data.length}`);
  }

  /** @internal */
  frameClose(code: number, reason: string): void {
    this.closeFrame = { code, reason };
    // Answer with the same code, as the RFC asks; the server then ends the TCP connection.
    this.sendClose(code === 1005 ? 1000 : code);
  }

  /** @internal */
  framePing(payload: Buffer): void {
    if (!this.closeSent && !this.closeInfo) this.socket.write(encodeFrame(OPCODE.pong, payload));
  }

  /** @internal */
  frameError(message: string): void {
    this.closeFrame ??= { code: 1002, reason: message };
    this.socket.destroy();
  }

  /** The upgrade failed: counted, the socket dropped, the opener told. */
  private fail(err: SwarmError): void {
    const opening = this.opening;
    if (!opening) return;
    this.opening = null;
    this.clearWait();
    this.counters.opening--;
    this.counters.failed++;
    this.socket.abandon();
    opening.reject(err);
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
    const frame = this.queued() ?? (await this.waitFrame(timeoutMs, what));
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
    for (const frame of this.takeQueue()) listener(frame);
  }

  /**
   * Hands every later text frame to `reader` as bytes, not as a string (a queued one too); for a
   * scenario that reads a field or two of each of very many frames. Time them with {@link readAt}.
   */
  streamRaw(reader: RawReader): void {
    this.rawReader = reader;
    for (const frame of this.takeQueue()) {
      const bytes = Buffer.from(frame);
      reader.rawFrame(bytes, 0, bytes.length);
    }
  }

  /** Epoch µs at which the bytes being decoded were read: every frame of one read arrived together. */
  get readAt(): number {
    return (this.readAtMicros ||= epochMicros());
  }

  /** The oldest queued frame; the emptied queue goes (its array keeps the room a push reserved). */
  private queued(): string | undefined {
    const frame = this.queue?.shift();
    if (this.queue?.length === 0) this.queue = null;
    return frame;
  }

  private takeQueue(): string[] {
    const queue = this.queue ?? [];
    this.queue = null;
    return queue;
  }

  /** Resolves when the socket has closed; rejects if that takes longer than `timeoutMs`. */
  closed(timeoutMs: number): Promise<CloseInfo> {
    if (this.closeInfo) return Promise.resolve(this.closeInfo);
    return new Promise((resolve, reject) => {
      this.wait(timeoutMs, () => {
        reject(new SwarmError('timeout', `no close within ${timeoutMs} ms`));
      });
      this.onClose({ connectionClosed: (_conn, info) => resolve(info) });
    });
  }

  /** Tells `listener` once the socket has closed (at once if it has). */
  onClose(listener: CloseListener): void {
    if (this.closeInfo) listener.connectionClosed(this, this.closeInfo);
    else this.closeListeners = this.closeListeners ? [...this.closeListeners, listener] : [listener];
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

  /** A read or a close is being awaited: one at a time per connection, as they share one time limit. */
  get waiting(): boolean {
    return this.onExpire !== null;
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
      (this.queue ??= []).push(frame);
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
    const listeners = this.closeListeners;
    this.closeListeners = null;
    for (const listener of listeners ?? []) listener.connectionClosed(this, this.closeInfo);
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
export function classifyConnectError(err: SocketError): SwarmError {
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
