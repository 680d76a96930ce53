/**
 * The `/pubsub` WebSocket endpoint: the uWS behaviour is a set of one-line delegates to
 * {@link PubSubEndpoint}, which turns parsed frames into broker calls and answers.
 *
 * Backpressure: uWS is given a hard cap of twice `--max-backpressure`; past the cap it skips a
 * socket's messages. Whenever a socket is found above `--max-backpressure` itself (after a direct send,
 * or by a sweep that runs while messages flow), it is a slow consumer: counted, sent `goodbye`, closed
 * with 1008. The gap between limit and cap leaves room for that goodbye and the close frame. The sweep
 * runs once per event-loop turn in which something was published, right after the turn's messages
 * went out (see `deliver`): a 100 ms interval let a fast publisher push a socket past the hard cap
 * between sweeps, and then the goodbye was dropped too.
 */
import { randomBytes } from 'node:crypto';
import type { HttpRequest, HttpResponse, us_socket_context_t, WebSocket, WebSocketBehavior } from 'uWebSockets.js';
import {
  events,
  mayClientPublish,
  maySubscribe,
  parseClientFrame,
  type ChannelRef,
  type ErrorCode,
  type GoodbyeReason,
  type RequestId,
} from '../protocol/index.js';
import { acceptUpgrade, CLOSE, SEND, type ServerContext } from './context.js';

/** Per-connection state, kept by uWS as the socket's user data. */
export interface PubSubConnection {
  readonly id: string;
  readonly user: string | null;
  readonly session: string;
  /** Channels subscribed; null until the first subscribe, to keep idle connections small. */
  channels: Set<string> | null;
  /** Set by the close handler; the socket must not be touched afterwards. */
  closed: boolean;
  /** Rate limit: start (ms) and frame count of the current one-second window. */
  windowStart: number;
  windowCount: number;
}

type Socket = WebSocket<PubSubConnection>;

/** uWS reads frames up to this many times the payload limit and we refuse them with 1009; larger ones
 * uWS cuts off at once (1006), so no client can make the server buffer more. */
const PAYLOAD_READ_FACTOR = 4;

const connectionPrefix = randomBytes(4).toString('hex');
let connectionCounter = 0;

export class PubSubEndpoint {
  /** Every open `/pubsub` socket (for shutdown and the backpressure sweep). */
  readonly sockets = new Set<Socket>();
  /** Local subscriber count of each channel. */
  private readonly channelCounts = new Map<string, number>();
  /** Channel and frame, in turn, of every message delivered this event-loop turn (see `deliver`). */
  private outbox: string[] = [];
  private flushScheduled = false;
  private stopped = false;
  private readonly flush = (): void => this.flushOutbox();

  constructor(private readonly ctx: ServerContext) {
    ctx.broker.onDeliver((channel, json) => this.deliver(channel, json));
  }

  /** The uWS behaviour of `/pubsub`. */
  behavior(): WebSocketBehavior<PubSubConnection> {
    const { options, uws } = this.ctx;
    return {
      compression: uws.DISABLED,
      maxPayloadLength: options.maxPayload * PAYLOAD_READ_FACTOR,
      maxBackpressure: options.maxBackpressure * 2,
      closeOnBackpressureLimit: 0,
      idleTimeout: options.idleTimeout,
      sendPingsAutomatically: options.idleTimeout > 0,
      upgrade: (res, req, context) => this.upgrade(res, req, context),
      open: (ws) => this.open(ws),
      message: (ws, data, isBinary) => this.message(ws, data, isBinary),
      close: (ws, code, reason) => this.close(ws, code, reason),
    };
  }

  private upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    if (this.ctx.shuttingDown) {
      res.writeStatus('503 Service Unavailable').end('shutting down');
      return;
    }
    const connection: PubSubConnection = {
      id: connectionPrefix + (++connectionCounter).toString(36),
      user: null,
      session: randomBytes(12).toString('base64url'),
      channels: null,
      closed: false,
      windowStart: 0,
      windowCount: 0,
    };
    acceptUpgrade(res, req, context, connection);
  }

  private open(ws: Socket): void {
    const conn = ws.getUserData();
    this.sockets.add(ws);
    this.ctx.stats.pubsubConnections++;
    this.ctx.stats.connectionsTotal++;
    this.send(ws, events.welcome(conn.id, conn.user, conn.session));
  }

  private message(ws: Socket, data: ArrayBuffer, isBinary: boolean): void {
    const { stats, options } = this.ctx;
    stats.messagesIn++;
    if (data.byteLength > options.maxPayload) return this.closeTooBig(ws);
    if (isBinary) return this.fail(ws, 'binary_not_supported', 'binary frames are not part of the protocol', null);
    const request = parseClientFrame(Buffer.from(data).toString('utf8'));
    if (request.action === 'error') return this.fail(ws, request.code, request.message, request.id);
    if (options.rateLimit > 0 && this.overRate(ws.getUserData())) {
      return this.fail(ws, 'rate_limited', `more than ${options.rateLimit} frames per second`, request.id);
    }
    switch (request.action) {
      case 'subscribe':
        return this.subscribe(ws, request.channel, request.id);
      case 'unsubscribe':
        return this.unsubscribe(ws, request.channel, request.id);
      case 'publish':
        return this.publish(ws, request.channel, request.messageJson, request.id);
      case 'ping':
        return this.send(ws, events.pong(request.id));
      case 'slow':
        return void this.slow(ws, request.ms, request.id);
    }
  }

  private close(ws: Socket, code: number, reason: ArrayBuffer): void {
    const conn = ws.getUserData();
    conn.closed = true;
    this.sockets.delete(ws);
    this.ctx.stats.pubsubConnections--;
    // uWS cuts off a frame past its read limit without a close frame; count it with the ones we refused.
    if (code === 1006 && Buffer.from(reason).toString() === 'Received too big message') this.ctx.stats.tooLarge++;
    if (conn.channels) for (const channel of conn.channels) this.dropInterest(channel);
    this.ctx.stats.subscriptions -= conn.channels?.size ?? 0;
    conn.channels = null;
  }

  private subscribe(ws: Socket, channel: ChannelRef, id: RequestId): void {
    const conn = ws.getUserData();
    if (!maySubscribe(channel.facility, conn)) {
      return this.fail(ws, 'forbidden', `this connection may not subscribe to ${channel.name}`, id);
    }
    const channels = (conn.channels ??= new Set());
    if (!channels.has(channel.name)) {
      if (channels.size >= this.ctx.options.maxSubscriptions) {
        return this.fail(ws, 'too_many_subscriptions', `at most ${this.ctx.options.maxSubscriptions} subscriptions`, id);
      }
      channels.add(channel.name);
      ws.subscribe(channel.name);
      this.ctx.stats.subscriptions++;
      this.addInterest(channel.name);
    }
    this.send(ws, events.subscribed(channel.name, id));
    if (this.ctx.options.expire > 0) void this.sendCached(ws, channel.name);
  }

  private async sendCached(ws: Socket, channel: string): Promise<void> {
    const conn = ws.getUserData();
    const cached = await this.ctx.broker.lastMessage(channel);
    if (cached === undefined || !conn.channels?.has(channel)) return;
    this.sendLater(ws, conn, events.message(channel, cached, true));
  }

  private unsubscribe(ws: Socket, channel: ChannelRef, id: RequestId): void {
    const conn = ws.getUserData();
    if (conn.channels?.delete(channel.name)) {
      ws.unsubscribe(channel.name);
      this.ctx.stats.subscriptions--;
      this.dropInterest(channel.name);
    }
    this.send(ws, events.unsubscribed(channel.name, id));
  }

  private publish(ws: Socket, channel: ChannelRef, messageJson: string, id: RequestId): void {
    if (!mayClientPublish(channel.facility, this.ctx.options.clientPublish)) {
      const why = channel.facility.kind === 'broadcast' ? 'clients may not publish (--no-client-publish)' : `${channel.facility.kind} channels are published by the server side only`;
      return this.fail(ws, 'forbidden', why, id);
    }
    void this.publishAndAck(ws, channel.name, messageJson, id);
  }

  private async publishAndAck(ws: Socket, channel: string, messageJson: string, id: RequestId): Promise<void> {
    const conn = ws.getUserData();
    try {
      await this.publishFromServer(channel, messageJson);
      if (id !== null) this.sendLater(ws, conn, events.published(channel, id));
    } catch (err) {
      this.failLater(ws, conn, 'publish_failed', `could not publish: ${(err as Error).message}`, id);
    }
  }

  /** Publishes on behalf of a client or of HTTP `/publish`. */
  publishFromServer(channel: string, messageJson: string): Promise<void> {
    this.ctx.stats.published++;
    return this.ctx.broker.publish(channel, messageJson);
  }

  private async slow(ws: Socket, ms: number, id: RequestId): Promise<void> {
    const { stats, slowIo } = this.ctx;
    const conn = ws.getUserData();
    stats.slowPending++;
    try {
      await slowIo.wait(ms);
      stats.slowDone++;
      this.sendLater(ws, conn, events.slowDone(ms, id));
    } catch (err) {
      stats.slowFailed++;
      this.failLater(ws, conn, 'slow_io_failed', `slow IO failed: ${(err as Error).message}`, id);
    } finally {
      stats.slowPending--;
    }
  }

  /**
   * The broker's delivery handler: one encoding now, uWS's native fan-out when this event-loop turn
   * ends. uWS.js drains its topics whenever a callback into JS returns, so an `app.publish` made inside a
   * message handler goes to each subscriber at once, one send() per copy; published together from
   * setImmediate, the copies due to one subscriber leave in one write. With one publisher at 50,000
   * msg/s and 2 subscribers that cut send() calls from 73,000/s to 4,200/s and the server's CPU from
   * 75% to 31% (bare uWS, measured with perf stat). Order within a channel is kept.
   */
  private deliver(channel: string, messageJson: string): void {
    const subscribers = this.ctx.app.numSubscribers(channel);
    if (subscribers === 0) return;
    this.ctx.stats.messagesOut += subscribers;
    this.outbox.push(channel, events.message(channel, messageJson));
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Publishes what this turn delivered, then looks for slow consumers among the receivers. */
  private flushOutbox(): void {
    this.flushScheduled = false;
    const outbox = this.outbox;
    this.outbox = [];
    for (let i = 0; i < outbox.length; i += 2) this.ctx.app.publish(outbox[i], outbox[i + 1], false);
    if (!this.stopped) this.sweepSlowConsumers();
  }

  /** Sends `goodbye` and closes every socket (shutdown). */
  goodbyeAll(reason: GoodbyeReason, code: number): void {
    for (const ws of [...this.sockets]) this.goodbye(ws, reason, code);
  }

  /** Stops the sweep. */
  stop(): void {
    this.stopped = true;
  }

  private goodbye(ws: Socket, reason: GoodbyeReason, code: number): void {
    if (ws.getUserData().closed) return;
    ws.cork(() => {
      ws.send(events.goodbye(reason));
      ws.end(code, reason);
    });
  }

  private closeTooBig(ws: Socket): void {
    this.ctx.stats.tooLarge++;
    ws.end(CLOSE.tooBig, `frame over ${this.ctx.options.maxPayload} bytes`);
  }

  private fail(ws: Socket, code: ErrorCode, text: string, id: RequestId): void {
    this.ctx.stats.errors[code]++;
    this.send(ws, events.error(code, text, id));
  }

  private failLater(ws: Socket, conn: PubSubConnection, code: ErrorCode, text: string, id: RequestId): void {
    if (conn.closed) return;
    ws.cork(() => this.fail(ws, code, text, id));
  }

  /** Sends from inside a uWS handler. */
  private send(ws: Socket, text: string): void {
    const result = ws.send(text, false);
    this.ctx.stats.messagesOut++;
    if (result === SEND.dropped) this.ctx.stats.dropped++;
    else if (result === SEND.backpressure && ws.getBufferedAmount() > this.ctx.options.maxBackpressure) {
      this.slowConsumer(ws);
    }
  }

  /**
   * Sends from outside a uWS handler (after an await). The socket may have closed meanwhile, and a
   * closed uWS socket throws on any access, so the caller passes the state it read before awaiting.
   */
  private sendLater(ws: Socket, conn: PubSubConnection, text: string): void {
    if (conn.closed) return;
    ws.cork(() => this.send(ws, text));
  }

  private slowConsumer(ws: Socket): void {
    this.ctx.stats.slowConsumers++;
    this.goodbye(ws, 'slow_consumer', CLOSE.policy);
  }

  private sweepSlowConsumers(): void {
    const limit = this.ctx.options.maxBackpressure;
    for (const ws of this.sockets) {
      if (ws.getBufferedAmount() > limit) this.slowConsumer(ws);
    }
  }

  private overRate(conn: PubSubConnection): boolean {
    const now = Date.now();
    if (now - conn.windowStart >= 1000) {
      conn.windowStart = now;
      conn.windowCount = 0;
    }
    return ++conn.windowCount > this.ctx.options.rateLimit;
  }

  private addInterest(channel: string): void {
    const count = this.channelCounts.get(channel) ?? 0;
    this.channelCounts.set(channel, count + 1);
    if (count === 0) {
      this.ctx.stats.channels++;
      this.ctx.broker.retain(channel);
    }
  }

  private dropInterest(channel: string): void {
    const count = (this.channelCounts.get(channel) ?? 1) - 1;
    if (count > 0) {
      this.channelCounts.set(channel, count);
      return;
    }
    this.channelCounts.delete(channel);
    this.ctx.stats.channels--;
    this.ctx.broker.release(channel);
  }
}
