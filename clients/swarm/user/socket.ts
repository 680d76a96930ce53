/**
 * A user scenario's socket (ScenarioSocket in scenario-api.ts) over one swarm Connection and the
 * protocol it speaks. Reads go straight to the connection; only while the socket awaits the reply to one
 * of its own requests are other frames set aside (message events published meanwhile, replies of the
 * scenario's own requests), and later reads take them first, in the order they came: nothing is lost
 * and nothing is reordered. What is set aside is bounded: a scenario that never reads its messages
 * fails with a `script` error instead of growing its worker without limit.
 */
import { isDeepStrictEqual } from 'node:util';
import type { CloseInfo, Connection } from '../connection.js';
import { SwarmError } from '../metrics.js';
import { parseJson, type Protocol, type ProtocolName } from '../protocols/types.js';
import type { FrameMatch, ScenarioSocket } from '../scenario-api.js';

/** Frames a socket sets aside, at most, while it awaits a reply. */
export const MAX_SET_ASIDE = 10_000;

export class UserSocket implements ScenarioSocket {
  /** Frames read while awaiting a reply, handed out first. */
  private readonly setAside: string[] = [];
  private lastId = 0;

  constructor(
    /** @internal For the built-in scenarios, which end a protocol's echo sequence their own way. */
    readonly connection: Connection,
    private readonly adapter: Protocol,
    readonly welcome: Readonly<Record<string, unknown>> | null,
    private readonly timeoutMs: number,
  ) {}

  get protocol(): ProtocolName {
    return this.adapter.name;
  }

  send(frame: unknown): void {
    this.connection.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  next(timeoutMs = this.timeoutMs): Promise<string> {
    if (this.setAside.length > 0) return Promise.resolve(this.setAside.shift()!);
    return this.read(timeoutMs, 'frame');
  }

  async nextJson<T = any>(timeoutMs = this.timeoutMs): Promise<T> {
    const frame = await this.next(timeoutMs);
    const value = parseJson(frame);
    if (value === undefined) throw new SwarmError('protocol_mismatch', `expected a JSON frame, got ${frame.slice(0, 120)}`);
    return value as T;
  }

  async expect<T = any>(match: FrameMatch, timeoutMs = this.timeoutMs): Promise<T> {
    const frame = await this.next(timeoutMs);
    const value = parseJson(frame) ?? frame;
    if (!matches(match, frame, value)) throw new SwarmError('expectation', `expected ${describe(match)}, got ${frame.slice(0, 120)}`);
    return value as T;
  }

  close(timeoutMs = this.timeoutMs): Promise<CloseInfo> {
    this.oneWait();
    return this.connection.close(timeoutMs);
  }

  closed(timeoutMs = this.timeoutMs): Promise<CloseInfo> {
    this.oneWait();
    return this.connection.closed(timeoutMs);
  }

  async subscribe(channel: string, extra: Readonly<Record<string, unknown>> = {}): Promise<void> {
    if (this.adapter.name !== 'contract') return this.adapter.subscribe(this.connection, channel, this.timeoutMs);
    await this.requestFor('subscribed', 'subscribe', { ...extra, channel });
  }

  async unsubscribe(channel: string): Promise<void> {
    await this.requestFor('unsubscribed', 'unsubscribe', { channel });
  }

  async publish(channel: string, message: unknown): Promise<void> {
    if (this.adapter.name !== 'contract') return this.connection.send(this.adapter.publishFrame(channel, JSON.stringify(message)));
    await this.requestFor('published', 'publish', { channel, message });
  }

  async rpc<T = unknown>(method: string, params?: unknown): Promise<T> {
    return (await this.requestFor('result', 'rpc', { method, params })).result as T;
  }

  async request(action: string, payload?: unknown): Promise<Record<string, unknown>> {
    this.contractOnly(action);
    const id = ++this.lastId;
    this.send(payload === undefined ? { action, id } : { action, payload, id });
    return this.replyTo(id, action);
  }

  async message<T = unknown>(timeoutMs = this.timeoutMs): Promise<{ channel: string; message: T }> {
    for (let i = 0; i < this.setAside.length; i++) {
      const message = this.adapter.message(this.setAside[i]);
      if (message) {
        this.setAside.splice(i, 1);
        return message as { channel: string; message: T };
      }
    }
    const until = performance.now() + timeoutMs;
    for (;;) {
      const frame = await this.read(remaining(until, timeoutMs, 'message'), 'message');
      const message = this.adapter.message(frame);
      if (message) return message as { channel: string; message: T };
      this.setAsideFrame(frame);
    }
  }

  /** A request whose reply must be the event `event`. */
  private async requestFor(event: string, action: string, payload: unknown): Promise<Record<string, unknown>> {
    const reply = await this.request(action, payload);
    if (reply.event !== event) throw new SwarmError('protocol_mismatch', `expected ${event} for ${action}, got ${JSON.stringify(reply).slice(0, 120)}`);
    return reply;
  }

  /** Reads until the reply with `id`; an error event with it throws `server_error`; other frames are set aside. */
  private async replyTo(id: number, action: string): Promise<Record<string, unknown>> {
    const until = performance.now() + this.timeoutMs;
    const what = `the reply to ${action} ${id}`;
    for (;;) {
      const frame = await this.read(remaining(until, this.timeoutMs, what), what);
      // Replies carry the id; a frame without `"id":<id>` in it is not this one and is not parsed here.
      if (frame.includes(`"id":${id}`)) {
        const reply = parseJson(frame) as Record<string, unknown> | undefined;
        if (reply && reply.id === id) {
          if (reply.event === 'error') throw new SwarmError('server_error', `${action}: error ${String(reply.code)}: ${String(reply.message)}`);
          return reply;
        }
      }
      this.setAsideFrame(frame);
    }
  }

  private read(timeoutMs: number, what: string): Promise<string> {
    this.oneWait();
    return this.connection.next(timeoutMs, what);
  }

  private setAsideFrame(frame: string): void {
    if (this.setAside.length >= MAX_SET_ASIDE) {
      throw new SwarmError('script', `more than ${MAX_SET_ASIDE} frames came unread while the socket awaited a reply or a message: read them with next() or message()`);
    }
    this.setAside.push(frame);
  }

  private oneWait(): void {
    if (this.connection.waiting) throw new SwarmError('script', 'a socket awaits one thing at a time: await the read (or close) in progress first');
  }

  private contractOnly(action: string): void {
    if (this.adapter.name !== 'contract') throw new SwarmError('script', `${action} is a request of the contract protocol; this socket speaks ${this.adapter.name}`);
  }
}

/** Milliseconds left until performance.now() `until`; none left is the wait's timeout. */
function remaining(until: number, timeoutMs: number, what: string): number {
  const left = until - performance.now();
  if (left <= 0) throw new SwarmError('timeout', `no ${what} within ${timeoutMs} ms`);
  return left;
}

function matches(match: FrameMatch, frame: string, value: unknown): boolean {
  if (typeof match === 'string') return frame === match;
  if (match instanceof RegExp) return match.test(frame);
  if (typeof match === 'function') return Boolean(match(value));
  if (!value || typeof value !== 'object') return false;
  return Object.entries(match).every(([key, expected]) => isDeepStrictEqual((value as Record<string, unknown>)[key], expected));
}

function describe(match: FrameMatch): string {
  if (typeof match === 'string') return JSON.stringify(match.slice(0, 120));
  if (match instanceof RegExp) return `a frame matching ${String(match)}`;
  if (typeof match === 'function') return `a frame passing ${match.name || 'the predicate'}`;
  return `a frame with ${JSON.stringify(match).slice(0, 120)}`;
}
