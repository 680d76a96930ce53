/**
 * The browser client of the pub/sub contract (docs/protocol.md), served by the server at `/client.js`:
 * one ES module, no dependencies, no build step for its user.
 *
 *   import { connect } from 'http://127.0.0.1:9000/client.js';
 *   const client = connect('ws://127.0.0.1:9000', { token });
 *   const off = client.subscribe('news', (message, meta) => console.log(message, meta.offset));
 *   await client.publish('news', { text: 'hi' });
 *
 * It reconnects by itself (exponential backoff with full jitter) and subscribes again to every channel
 * it was on; when the server keeps history (messages carry offsets), it asks for each channel `since`
 * the last offset it saw, so nothing is lost across a reconnect, or says so (`recovered: false` in the
 * `resubscribed` event). In Node give it the `ws` package's constructor: `connect(url, { WebSocket })`.
 *
 * This file is compiled with the rest of the project but must stay free of imports: the server sends
 * the compiled file as it is.
 */

/** What the client needs of a WebSocket: the browser's, or the `ws` package's in Node. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type SocketConstructor = new (url: string, protocols?: string[]) => SocketLike;

/** `connecting` (the first time), `open`, `reconnecting` (lost, waiting to try again), `closed` (by `close()`). */
export type State = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ConnectOptions {
  /**
   * A signed token (HS256 JWT), sent in the `Sec-WebSocket-Protocol` header (`pubsub`, `bearer.<jwt>`),
   * so it stays out of the URL and of access logs. A function is asked again before every connect.
   */
  token?: string | (() => string | Promise<string>);
  /**
   * The WebSocket constructor; default `globalThis.WebSocket`. Any constructor of a socket with the
   * browser's `onopen`/`onmessage`/`onclose`/`onerror`, `send`, `close` and `readyState` will do (the `ws`
   * package's does).
   */
  WebSocket?: new (url: string, protocols?: string[]) => object;
  /** First reconnect delay, ms (default 250); it doubles up to `maxDelayMs` (default 10,000), with full jitter. */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** How long a request waits for its answer, ms (default 10,000). */
  requestTimeoutMs?: number;
}

/** Where a message stands, and whether it came from the channel cache. */
export interface MessageMeta {
  channel: string;
  /** Set when the server keeps history. */
  offset?: number;
  epoch?: string;
  cached?: boolean;
}

export type MessageHandler = (message: unknown, meta: MessageMeta) => void;

export interface SubscribeOptions {
  /** Start from this position: the server replays what came after it (history on the server). */
  since?: { offset: number; epoch: string };
  /** Also get `join` and `leave` events of the channel (presence on the server), through `on('join')`. */
  joinLeave?: boolean;
}

/** A member of a channel (presence). */
export interface Member {
  connection: string;
  user: string | null;
  session: string;
}

/** An `error` frame's code and text, as an Error. */
export class ServerError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'ServerError';
  }
}

interface Events {
  state: (state: State) => void;
  welcome: (welcome: { connection: string; user: string | null; session: string }) => void;
  /** After a reconnect, for each channel: whether the server could replay everything missed. */
  resubscribed: (channel: string, recovered: boolean) => void;
  join: (channel: string, member: Member) => void;
  leave: (channel: string, member: Member) => void;
  /** An error frame without a request to answer, or a subscription the server refused after a reconnect. */
  error: (error: Error) => void;
  goodbye: (reason: string) => void;
}

interface Pending {
  resolve: (frame: Frame) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
  /** The frame, until it was sent on a connection (then null: a lost connection fails it). */
  unsent: string | null;
}

interface Subscription {
  handlers: Set<MessageHandler>;
  joinLeave: boolean;
  /** The last position seen on this channel, to resume from (or the `since` asked for). */
  last: { offset: number; epoch: string } | null;
  /** A subscribe of it went on the current connection. */
  sent: boolean;
  /** Settles with its first ack; `first` until then. */
  ready: Promise<void>;
  settleReady: (error?: Error) => void;
  first: boolean;
}

type Frame = Record<string, any>;

const OPEN = 1;

export class PubSubClient {
  private socket: SocketLike | null = null;
  private currentState: State = 'connecting';
  /** Each event's listeners take that event's arguments (see `on` and `emit`). */
  private readonly listeners = new Map<keyof Events, Set<(...args: any[]) => void>>();
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly Socket: SocketConstructor;
  private readonly url: string;

  constructor(
    url: string,
    private readonly options: ConnectOptions = {},
  ) {
    const Socket = options.WebSocket ?? (globalThis as { WebSocket?: SocketConstructor }).WebSocket;
    if (!Socket) throw new TypeError('no WebSocket: pass { WebSocket } (in Node: the ws package)');
    this.Socket = Socket as SocketConstructor;
    this.url = pubsubUrl(url);
    void this.open();
  }

  /** The connection's state now. */
  get state(): State {
    return this.currentState;
  }

  on<K extends keyof Events>(event: K, listener: Events[K]): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => void set.delete(listener);
  }

  /**
   * Subscribes `handler` to `channel`, on this connection and every later one; the function returned
   * stops it. Its `ready` settles with the first ack (rejects with the server's error when refused).
   */
  subscribe(channel: string, handler: MessageHandler, options: SubscribeOptions = {}): (() => void) & { ready: Promise<void> } {
    let sub = this.subscriptions.get(channel);
    if (!sub) {
      let settleReady: (error?: Error) => void = () => undefined;
      const ready = new Promise<void>((resolve, reject) => (settleReady = (error) => (error ? reject(error) : resolve())));
      ready.catch(() => undefined); // a caller that does not await it must not see an unhandled rejection
      sub = { handlers: new Set(), joinLeave: options.joinLeave === true, last: options.since ?? null, sent: false, ready, settleReady, first: true };
      this.subscriptions.set(channel, sub);
      if (this.currentState === 'open') this.sendSubscribe(channel, sub);
    }
    sub.handlers.add(handler);
    const off = (): void => {
      const current = this.subscriptions.get(channel);
      if (!current || !current.handlers.delete(handler) || current.handlers.size > 0) return;
      this.subscriptions.delete(channel);
      if (this.currentState === 'open') this.request({ action: 'unsubscribe', payload: { channel } }).catch(() => undefined);
    };
    return Object.assign(off, { ready: sub.ready });
  }

  /** Publishes; resolves once the server acked it (`published`), rejects on an error frame. */
  async publish(channel: string, message: unknown): Promise<void> {
    await this.request({ action: 'publish', payload: { channel, message } });
  }

  /** Calls a receiver of the server's application (`rpc`); resolves with its result. */
  async rpc(method: string, params?: unknown): Promise<unknown> {
    return (await this.request({ action: 'rpc', payload: { method, params } })).result;
  }

  /** Who is subscribed to `channel` on every instance (the client must be subscribed to it). */
  async presence(channel: string): Promise<Member[]> {
    return (await this.request({ action: 'presence', payload: { channel } })).members as Member[];
  }

  /** The last `limit` kept messages of `channel`, oldest first, and the channel's epoch. */
  async history(channel: string, limit?: number): Promise<{ epoch: string; messages: { offset: number; message: unknown }[] }> {
    const frame = await this.request({ action: 'history', payload: { channel, ...(limit === undefined ? {} : { limit }) } });
    return { epoch: frame.epoch as string, messages: frame.messages as { offset: number; message: unknown }[] };
  }

  /** Closes for good: no reconnect; pending requests are rejected. */
  close(): void {
    this.setState('closed');
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.failPending(new Error('the client was closed'), true);
    this.socket?.close(1000);
    this.socket = null;
  }

  private async open(): Promise<void> {
    if (this.currentState === 'closed') return;
    const url = this.url;
    let protocols: string[] | undefined;
    try {
      const token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token;
      // The server answers with `pubsub`; the token goes no further than the request.
      if (token) protocols = ['pubsub', `bearer.${token}`];
    } catch (err) {
      this.emit('error', err instanceof Error ? err : new Error(String(err)));
      return this.retry();
    }
    if (this.isClosed()) return; // close() was called while the token was fetched
    const socket = protocols ? new this.Socket(url, protocols) : new this.Socket(url);
    this.socket = socket;
    socket.onmessage = (event) => this.onFrame(String(event.data));
    socket.onerror = () => undefined; // a close follows, and is what counts
    socket.onclose = () => {
      if (socket !== this.socket) return;
      this.socket = null;
      this.failPending(new Error('the connection was lost before the answer came'), false);
      if (this.currentState !== 'closed') this.retry();
    };
  }

  private isClosed(): boolean {
    return this.currentState === 'closed';
  }

  private retry(): void {
    this.setState('reconnecting');
    for (const sub of this.subscriptions.values()) sub.sent = false;
    const min = this.options.minDelayMs ?? 250;
    const max = this.options.maxDelayMs ?? 10_000;
    const delay = Math.random() * Math.min(max, min * 2 ** this.attempt++);
    this.retryTimer = setTimeout(() => void this.open(), delay);
  }

  /** The first frame is `welcome`: the connection counts as open from then on. */
  private onWelcome(frame: Frame): void {
    this.attempt = 0;
    this.setState('open');
    this.emit('welcome', { connection: frame.connection, user: frame.user ?? null, session: frame.session });
    for (const [channel, sub] of this.subscriptions) if (!sub.sent) this.sendSubscribe(channel, sub);
    for (const pending of this.pending.values()) {
      if (pending.unsent === null) continue;
      this.socket?.send(pending.unsent);
      pending.unsent = null;
    }
  }

  /**
   * Subscribes on this connection, from the last position seen when there is one. The first ack
   * settles `ready`; a later one (after a reconnect) says whether nothing was lost (`resubscribed`).
   */
  private sendSubscribe(channel: string, sub: Subscription): void {
    const payload: Frame = { channel };
    if (sub.joinLeave) payload.join_leave = true;
    const since = sub.last;
    if (since) payload.since = since;
    sub.sent = true;
    this.request({ action: 'subscribe', payload }).then(
      (ack) => {
        if (sub.first) {
          sub.first = false;
          return sub.settleReady();
        }
        this.emit('resubscribed', channel, since !== null && ack.recovered === true);
      },
      (err: Error) => {
        if (!(err instanceof ServerError)) {
          sub.sent = false; // the connection went before the ack: the next one subscribes it
          return;
        }
        // Refused: it is not subscribed any more.
        if (this.subscriptions.get(channel) === sub) this.subscriptions.delete(channel);
        if (sub.first) sub.settleReady(err);
        else this.emit('error', err);
      },
    );
  }

  private request(frame: Frame): Promise<Frame> {
    const id = this.nextId++;
    const text = JSON.stringify({ ...frame, id });
    return new Promise((resolve, reject) => {
      const timeoutMs = this.options.requestTimeoutMs ?? 10_000;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer to ${String(frame.action)} within ${timeoutMs} ms`));
      }, timeoutMs);
      const now = this.currentState === 'open' && this.socket?.readyState === OPEN;
      this.pending.set(id, { resolve, reject, timer, unsent: now ? null : text });
      if (now) this.socket?.send(text);
    });
  }

  private onFrame(text: string): void {
    let frame: Frame;
    try {
      frame = JSON.parse(text) as Frame;
    } catch {
      return this.emit('error', new Error(`a frame that is not JSON: ${text.slice(0, 100)}`));
    }
    switch (frame.event) {
      case 'welcome':
        return this.onWelcome(frame);
      case 'message':
        return this.onMessage(frame);
      case 'join':
      case 'leave':
        return this.emit(frame.event, frame.channel as string, frame.member as Member);
      case 'goodbye':
        return this.emit('goodbye', String(frame.reason ?? ''));
      case 'error': {
        const error = new ServerError(String(frame.code), String(frame.message));
        const pending = frame.id === null || frame.id === undefined ? undefined : this.pending.get(frame.id as number);
        if (!pending) return this.emit('error', error);
        this.settle(frame.id as number);
        return pending.reject(error);
      }
      default: {
        const pending = typeof frame.id === 'number' ? this.pending.get(frame.id) : undefined;
        if (!pending) return; // an ack the server sent on its own (a hook's subscribe)
        this.settle(frame.id as number);
        pending.resolve(frame);
      }
    }
  }

  private onMessage(frame: Frame): void {
    const channel = frame.channel as string;
    const sub = this.subscriptions.get(channel);
    if (!sub) return;
    const meta: MessageMeta = { channel };
    if (typeof frame.offset === 'number') {
      meta.offset = frame.offset;
      meta.epoch = frame.epoch as string;
      // Replayed or live, in order: the last one seen is where a reconnect resumes.
      sub.last = { offset: frame.offset, epoch: frame.epoch as string };
    }
    if (frame.cached === true) meta.cached = true;
    for (const handler of sub.handlers) {
      try {
        handler(frame.message, meta);
      } catch (err) {
        this.emit('error', err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  private settle(id: number): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pending.delete(id);
  }

  /** Rejects the requests sent on the lost connection (`all`: also those still waiting to be sent). */
  private failPending(error: Error, all: boolean): void {
    for (const [id, pending] of this.pending) {
      if (!all && pending.unsent !== null) continue;
      clearTimeout(pending.timer);
      this.pending.delete(id);
      pending.reject(error);
    }
  }

  private setState(state: State): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.emit('state', state);
  }

  private emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    for (const listener of this.listeners.get(event) ?? []) listener(...args);
  }
}

/** Opens a client on `url` (`ws://host:port`, or the `/pubsub` URL itself). */
export function connect(url: string, options: ConnectOptions = {}): PubSubClient {
  return new PubSubClient(url, options);
}

/** `ws://host:port` and `ws://host:port/` mean the server's `/pubsub`; any other path is kept. */
function pubsubUrl(url: string): string {
  const match = /^(wss?:\/\/[^/?#]+)(\/?)([?#].*)?$/.exec(url);
  return match ? `${match[1]}/pubsub${match[3] ?? ''}` : url;
}
