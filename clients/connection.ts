/**
 * One client socket (ws) as a scenario sees it: open it, await the next frame or the close with a time
 * limit, and have every failure arrive as a SwarmError of a known kind. Frames are queued until a scenario
 * reads them, or handed to a listener for scenarios that stream (broadcast).
 */
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { SwarmError, type Counters } from './metrics.js';

/** What a close looked like from the client. */
export interface CloseInfo {
  code: number;
  reason: string;
}

type Waiter = { resolve: (frame: string) => void; reject: (err: SwarmError) => void };

export class Connection {
  private readonly queue: string[] = [];
  private waiter: Waiter | null = null;
  private closeInfo: CloseInfo | null = null;
  private readonly closeWaiters: ((info: CloseInfo) => void)[] = [];
  private listener: ((frame: string) => void) | null = null;

  private constructor(
    private readonly ws: WebSocket,
    private readonly counters: Counters,
    /** The TCP socket under `ws`, for `batch`; null if the upgrade did not show it. */
    private readonly socket: Socket | null,
  ) {
    ws.on('message', (data, isBinary) => {
      counters.received++;
      const frame = isBinary ? `\u0000binary:${(data as Buffer).length}` : data.toString();
      if (this.listener) return this.listener(frame);
      if (this.waiter) {
        const { resolve } = this.waiter;
        this.waiter = null;
        resolve(frame);
      } else {
        this.queue.push(frame);
      }
    });
    ws.on('close', (code, reason) => {
      counters.connected--;
      counters.closed++;
      this.closeInfo = { code, reason: reason.toString() };
      const waiter = this.waiter;
      this.waiter = null;
      waiter?.reject(new SwarmError('unexpected_close', `closed with ${code} ${this.closeInfo.reason} while a frame was awaited`));
      for (const resolve of this.closeWaiters.splice(0)) resolve(this.closeInfo);
    });
    // After open, errors are followed by 'close', which is where the scenario hears of them.
    ws.on('error', () => undefined);
  }

  /**
   * Opens a socket; counts it as opening, then connected or failed. With `localPort` the socket binds
   * that port of `localAddress`; if something else holds it, the kernel picks one instead.
   */
  static open(url: string, counters: Counters, options: { localAddress?: string; localPort?: number; timeoutMs: number }): Promise<Connection> {
    counters.opening++;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {
        perMessageDeflate: false,
        localAddress: options.localAddress,
        localPort: options.localPort,
        handshakeTimeout: options.timeoutMs,
        maxPayload: 64 * 1024 * 1024,
        // Every frame the scenarios read goes through JSON.parse or an exact comparison, which catch bad
        // text; validating UTF-8 first would cost the swarm CPU it needs for load.
        skipUTF8Validation: true,
      });
      const fail = (err: SwarmError): void => {
        counters.opening--;
        counters.failed++;
        ws.removeAllListeners();
        ws.on('error', () => undefined);
        ws.terminate();
        reject(err);
      };
      ws.once('unexpected-response', (_req, res) => fail(new SwarmError('rejected', `upgrade answered with HTTP ${res.statusCode}`)));
      ws.once('error', (err: Error & { code?: string }) => {
        if (err.code === 'EADDRINUSE' && options.localPort !== undefined) {
          counters.opening--;
          ws.removeAllListeners();
          ws.on('error', () => undefined);
          Connection.open(url, counters, { ...options, localPort: undefined }).then(resolve, reject);
        } else {
          fail(classifyConnectError(err));
        }
      });
      let socket: Socket | null = null;
      ws.once('upgrade', (res) => (socket = res.socket));
      ws.once('open', () => {
        ws.removeAllListeners();
        counters.opening--;
        counters.connected++;
        resolve(new Connection(ws, counters, socket));
      });
    });
  }

  /** Sends a text frame. */
  send(text: string): void {
    this.counters.sent++;
    this.ws.send(text);
  }

  /**
   * Sends every frame `fill` sends in one write: the TCP socket stays corked until `fill` returns. A
   * publisher that wakes up to several due messages so costs the kernel one loopback round, not one per
   * frame, as a batching producer would.
   */
  batch(fill: () => void): void {
    this.socket?.cork();
    try {
      fill();
    } finally {
      this.socket?.uncork();
    }
  }

  /** The next text frame; rejects on timeout, on close, and on a binary frame (the contract sends text). */
  async next(timeoutMs: number, what = 'a frame'): Promise<string> {
    const frame = this.queue.shift() ?? (await this.waitFrame(timeoutMs, what));
    if (frame.startsWith('\u0000binary:')) throw new SwarmError('protocol_mismatch', `binary frame while awaiting ${what}`);
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

  /** Resolves when the socket has closed; rejects if that takes longer than `timeoutMs`. */
  closed(timeoutMs: number): Promise<CloseInfo> {
    if (this.closeInfo) return Promise.resolve(this.closeInfo);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new SwarmError('timeout', `no close within ${timeoutMs} ms`)), timeoutMs);
      this.closeWaiters.push((info) => {
        clearTimeout(timer);
        resolve(info);
      });
    });
  }

  /** Calls `listener` once the socket has closed (at once if it has). */
  onClose(listener: (info: CloseInfo) => void): void {
    if (this.closeInfo) listener(this.closeInfo);
    else this.closeWaiters.push(listener);
  }

  /** Starts a clean close (1000) and waits for it to finish. */
  async close(timeoutMs: number): Promise<CloseInfo> {
    if (!this.closeInfo) this.ws.close(1000);
    return this.closed(timeoutMs);
  }

  /** Drops the socket at once (errors, the run's deadline). */
  terminate(): void {
    if (!this.closeInfo) this.ws.terminate();
  }

  get isClosed(): boolean {
    return this.closeInfo !== null;
  }

  private waitFrame(timeoutMs: number, what: string): Promise<string> {
    if (this.closeInfo) {
      return Promise.reject(new SwarmError('unexpected_close', `closed with ${this.closeInfo.code} before ${what}`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new SwarmError('timeout', `no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = {
        resolve: (frame) => (clearTimeout(timer), resolve(frame)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      };
    });
  }
}

/** Sorts a connect failure into an error kind by its errno code or ws's message. */
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
  if (/handshake has timed out/i.test(err.message)) return new SwarmError('timeout', err.message);
  if (/Invalid Sec-WebSocket-Accept|Unexpected server response|Invalid WebSocket frame/i.test(err.message)) {
    return new SwarmError('protocol_mismatch', err.message);
  }
  return new SwarmError('other', err.message);
}
