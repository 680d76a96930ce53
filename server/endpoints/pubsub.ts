/**
 * The `/pubsub` WebSocket endpoint: the uWS behaviour is a set of one-line delegates to
 * {@link PubSubEndpoint}, which turns parsed frames into broker calls and answers.
 *
 * No frame can take the process down: the codec never throws (a bad frame is an error frame), and each
 * handler has a last guard, so an exception that escapes one (a bug) ends that connection alone with
 * goodbye `server_error` and 1011, counted in `handler_errors`.
 *
 * Backpressure: uWS is given no cap of its own (`maxBackpressure: 0`), because past its cap uWS drops
 * every send, the goodbye and the close frame included, and the client sees 1006. This endpoint keeps
 * the limit itself: a socket found above `--max-backpressure` is a slow consumer (counted, sent
 * `goodbye`, closed with 1008). It is looked for after every direct send to that socket, and among all
 * sockets by a sweep that runs whenever the messages published since the last sweep add up to
 * SWEEP_BUDGET_SHARE of the limit (checked between messages as a turn's outbox goes out) and once a
 * second. No socket receives more than every published byte, so none gets further than the limit plus
 * that budget plus one frame before it is closed, at any publish rate; the sweep runs as often as the
 * bytes flowing require and no more often.
 */
import type { WebSocket, WebSocketBehavior } from '../engine.js';
import {
  events,
  mayClientPublish,
  maySubscribe,
  parseChannel,
  parseClientFrame,
  type ChannelRef,
  type ClientAction,
  type ErrorCode,
  type GoodbyeReason,
  type RequestId,
} from '../protocol/index.js';
import { countClientClose } from '../stats.js';
import { callHook, hasRequestHooks, type HookConnection, type HookName } from '../hooks.js';
import type { History, Missed, Position } from '../history/types.js';
import { granted, TokenRefused, type TokenIdentity } from '../identity.js';
import { bufferedBytes, CLOSE, endAll, reportHandlerError, reportHookFailure, SEND, type ServerContext } from './context.js';
import { PubSubUpgrades } from './pubsub-upgrade.js';


/** Per-connection state, kept by uWS as the socket's user data. */
export interface PubSubConnection {
  readonly id: string;
  readonly user: string | null;
  readonly session: string;
  /** What the connection's token grants beyond the built-in rules (`channels`, `publish`); null without a token. */
  grants: Pick<TokenIdentity, 'channels' | 'publish'> | null;
  /** When its token expires (ms since the epoch); null without a token or without `exp`. */
  expiresAt: number | null;
  /** Channels subscribed; null until the first subscribe, to keep idle connections small. */
  channels: Set<string> | null;
  /** Set by the close handler; the socket must not be touched afterwards. */
  closed: boolean;
  /** Set once shutdown said goodbye: nothing more is sent, and frames from the client are ignored. */
  leaving: boolean;
  /** Set when the server ends the connection (its close is then not the client's). */
  endedByServer: boolean;
  /** Rate limit: start (ms) and frame count of the current one-second window. */
  windowStart: number;
  windowCount: number;
  /** Source address, for the per-address limit. */
  readonly address: string;
  /**
   * With request hooks: the end of this connection's last request, so requests run one after another
   * in the order sent while a hook awaits (other connections go on). Null without request hooks.
   */
  queue: Promise<void> | null;
  /** What hooks see of it; made on first use. */
  facade: HookConnection | null;
}

type Socket = WebSocket<PubSubConnection>;

/** uWS reads frames up to this many times the payload limit and we refuse them with 1009; larger ones
 * uWS cuts off at once (1006), so no client can make the server buffer more. */
const PAYLOAD_READ_FACTOR = 4;

/** Characters of frames in a turn's outbox past which it goes out at once: twice the 512 KB uWS 20.30 reads from one connection per turn. */
const OUTBOX_FLUSH_CHARS = 1024 * 1024;

/** Published bytes, as a share of `--max-backpressure`, after which every socket is swept. */
const SWEEP_BUDGET_SHARE = 0.25;
/** The sweep also runs this often, for a socket over the limit while nothing is published. */
const SWEEP_INTERVAL_MS = 1000;

/** Before a channel name, the uWS topic of its join_leave subscribers (no channel name has this character). */
const JOIN_LEAVE_TOPIC = '\u0001';

/** A connection as presence lists it. */
function memberOf(conn: PubSubConnection): events.Member {
  return { connection: conn.id, user: conn.user, session: conn.session };
}


/** How often a monitor waiting for the broker to connect looks again (bridged()). */
const BRIDGE_POLL_MS = 50;

/** A message that went out while a subscriber's replay was read: its position (if any) and its frame. */
interface Collected {
  position: Position | undefined;
  frame: string;
}

/** A subscribe with `since` whose replay is being read, and what it collects meanwhile. */
interface Recovering {
  frames: Collected[];
}

export class PubSubEndpoint {
  /** Every open `/pubsub` socket (for shutdown and the backpressure sweep). */
  readonly sockets = new Set<Socket>();
  /** Local subscriber count of each channel. */
  private readonly channelCounts = new Map<string, number>();
  /** Channel and frame, in turn, of every message delivered this event-loop turn (see `deliver`). */
  private outbox: string[] = [];
  /** Characters of the frames (or messages, with history) in the outbox. */
  private outboxChars = 0;
  /** With history: the position the broker gave each message of the outbox (one per pair), if any. */
  private outboxPositions: (Position | undefined)[] = [];
  /**
   * Subscribes with `since` whose replay is being read, by channel: what goes out on the channel
   * meanwhile is collected for them, since their sockets join the channel's topic only after the replay.
   */
  private readonly recovering = new Map<string, Set<Recovering>>();
  private flushScheduled = false;
  private stopped = false;
  /** Set when shutdown begins: publishes and slow requests are refused from then on. */
  private draining = false;
  private readonly flush = (): void => {
    this.flushScheduled = false;
    this.flushOutbox();
  };
  /** Characters published since the last sweep, and how many make the next sweep due. */
  private unswept = 0;
  private readonly sweepBudget: number;
  private readonly sweepTimer: NodeJS.Timeout;
  /** The sockets whose token expires, checked each second (the sweep's timer). */
  private readonly expiring = new Set<Socket>();
  /** The kept messages (`--history`); null when off. */
  private readonly history: History | null;
  /** Whether hooks handle requests: then each connection's requests run one at a time, in order. */
  private readonly sequential: boolean;
  private readonly upgrades: PubSubUpgrades;

  constructor(private readonly ctx: ServerContext) {
    ctx.broker.onDeliver((channel, json, position) => this.deliver(channel, json, position));
    ctx.presence?.onEvent((kind, channel, member) => this.joinOrLeave(kind, channel, member));
    this.history = ctx.history;
    this.sweepBudget = Math.max(1, Math.floor(ctx.options.maxBackpressure * SWEEP_BUDGET_SHARE));
    this.sequential = hasRequestHooks(ctx.hooks);
    this.upgrades = new PubSubUpgrades(ctx);
    this.sweepTimer = setInterval(() => {
      this.sweepSlowConsumers();
      this.expireTokens(Date.now());
    }, SWEEP_INTERVAL_MS).unref();
  }

  /** The uWS behaviour of `/pubsub`. */
  behavior(): WebSocketBehavior<PubSubConnection> {
    const { options, uws } = this.ctx;
    return {
      compression: uws.DISABLED,
      maxPayloadLength: options.maxPayload * PAYLOAD_READ_FACTOR,
      maxBackpressure: 0,
      closeOnBackpressureLimit: false,
      idleTimeout: options.idleTimeout,
      sendPingsAutomatically: options.idleTimeout > 0,
      upgrade: (res, req, context) => this.upgrades.upgrade(res, req, context),
      open: (ws) => this.open(ws),
      message: (ws, data, isBinary) => this.message(ws, data, isBinary),
      close: (ws, code, reason) => this.close(ws, code, reason),
    };
  }

  private open(ws: Socket): void {
    const conn = ws.getUserData();
    this.sockets.add(ws);
    if (conn.expiresAt !== null) this.expiring.add(ws);
    this.ctx.stats.pubsubConnections++;
    this.ctx.stats.connectionsTotal++;
    // Nothing can be sent to the socket between the upgrade and the microtask: welcome stays first.
    if (this.upgrades.inCork) queueMicrotask(() => this.welcome(ws, conn, true));
    else this.welcome(ws, conn, false);
    // In the connection's queue, so requests wait for it; it runs after the welcome's microtask.
    if (this.ctx.hooks.onOpen) this.enqueue(conn, () => this.runOnOpen(ws, conn));
  }

  /** Runs `task` after the connection's earlier queued work (tasks never reject: each ends in an error frame). */
  private enqueue(conn: PubSubConnection, task: () => Promise<void>): void {
    conn.queue = (conn.queue ?? Promise.resolve()).then(task);
  }

  /** `onOpen`, after the welcome. */
  private async runOnOpen(ws: Socket, conn: PubSubConnection): Promise<void> {
    if (conn.closed) return;
    const outcome = await callHook(() => this.ctx.hooks.onOpen!(this.facade(ws, conn)), this.ctx.options.hookTimeout);
    if (!outcome.ok) this.hookFailedFor(ws, conn, 'onOpen', outcome, null);
  }

  /** The first frame; `later`: outside any uWS handler, so it corks itself. */
  private welcome(ws: Socket, conn: PubSubConnection, later: boolean): void {
    const frame = events.welcome(conn.id, conn.user, conn.session);
    try {
      if (later) this.sendLater(ws, conn, frame);
      else this.send(ws, frame);
    } catch (err) {
      this.crashed(ws, conn, 'pubsub open', err);
    }
  }

  private message(ws: Socket, data: ArrayBuffer, isBinary: boolean): void {
    const conn = ws.getUserData();
    if (conn.closed || conn.leaving) return;
    try {
      this.handle(ws, conn, data, isBinary);
    } catch (err) {
      this.crashed(ws, conn, 'pubsub message', err);
    }
  }

  /**
   * The last guard's answer to an exception that escaped a handler: goodbye `server_error` and 1011
   * for this connection only, counted; every other connection goes on.
   */
  private crashed(ws: Socket, conn: PubSubConnection, where: string, err: unknown): void {
    reportHandlerError(this.ctx, where, err);
    if (conn.closed) return;
    try {
      this.goodbye(ws, 'server_error', CLOSE.serverError);
    } catch {
      // The socket is unusable: uWS ends it by its own timeouts.
    }
  }

  private handle(ws: Socket, conn: PubSubConnection, data: ArrayBuffer, isBinary: boolean): void {
    const { stats, options } = this.ctx;
    stats.messagesIn++;
    if (data.byteLength > options.maxPayload) return this.closeTooBig(ws);
    if (isBinary) return this.fail(ws, 'binary_not_supported', 'binary frames are not part of the protocol', null);
    const request = parseClientFrame(Buffer.from(data).toString('utf8'), options.maxJsonDepth);
    if (request.action === 'error') return this.fail(ws, request.code, request.message, request.id);
    if (this.draining && (request.action === 'publish' || request.action === 'slow')) {
      return this.fail(ws, 'shutting_down', `the server is shutting down: this ${request.action} was not taken`, request.id);
    }
    if (options.rateLimit > 0 && this.overRate(conn)) {
      return this.fail(ws, 'rate_limited', `more than ${options.rateLimit} frames per second`, request.id);
    }
    if (this.sequential || conn.queue) return this.enqueue(conn, () => this.handleWithHooks(ws, conn, request));
    this.dispatch(ws, request);
  }

  /** Carries out a request that passed every check, inside a uWS handler or a cork. */
  private dispatch(ws: Socket, request: ClientAction): void {
    switch (request.action) {
      case 'subscribe':
        return this.subscribe(ws, request.channel, request.id, request.joinLeave, request.since);
      case 'history':
        return void this.sendHistory(ws, request.channel, request.limit, request.id);
      case 'presence':
        return void this.presence(ws, request.channel, request.id);
      case 'unsubscribe':
        return this.unsubscribe(ws, request.channel, request.id);
      case 'publish':
        return this.clientPublish(ws, request.channel, request.messageJson, request.id);
      case 'ping':
        return this.send(ws, events.pong(request.id));
      case 'slow':
        return void this.slow(ws, request.ms, request.id);
      case 'refresh':
        return void this.refresh(ws, request.token, request.id);
      case 'rpc':
        return void this.rpc(ws, ws.getUserData(), request.method, request.params, request.id);
    }
  }

  /**
   * A request on a connection with request hooks: the hooks it calls, then the request, one request
   * at a time per connection (in the order sent). Never throws: a failed hook is an error frame.
   */
  private async handleWithHooks(ws: Socket, conn: PubSubConnection, request: ClientAction): Promise<void> {
    const hooks = this.ctx.hooks;
    const later = (act: () => void): void => this.corkLater(ws, conn, act);
    try {
      if (conn.closed || conn.leaving) return;
      if (request.action === 'subscribe' && hooks.canSubscribe && this.maySubscribe(conn, request.channel)) {
        const outcome = await callHook(() => hooks.canSubscribe!(this.facade(ws, conn), request.channel.name), this.ctx.options.hookTimeout);
        if (!outcome.ok) return this.hookFailedFor(ws, conn, 'canSubscribe', outcome, request.id);
        if (outcome.value === false) return later(() => this.fail(ws, 'forbidden', `the canSubscribe hook refused ${request.channel.name}`, request.id));
      }
      if (request.action === 'publish' && (hooks.canPublish || hooks.onPublish?.length) && this.mayPublish(conn, request.channel)) {
        return await this.publishWithHooks(ws, conn, request.channel, request.messageJson, request.id);
      }
      later(() => this.dispatch(ws, request));
    } catch (err) {
      this.crashed(ws, conn, 'pubsub hooks', err);
    }
  }

  /** `canPublish`, then the push traps in order, then the publish (or a drop, acked all the same). */
  private async publishWithHooks(ws: Socket, conn: PubSubConnection, channel: ChannelRef, messageJson: string, id: RequestId): Promise<void> {
    const hooks = this.ctx.hooks;
    const facade = this.facade(ws, conn);
    let message: unknown = JSON.parse(messageJson);
    if (hooks.canPublish) {
      const outcome = await callHook(() => hooks.canPublish!(facade, channel.name, message), this.ctx.options.hookTimeout);
      if (!outcome.ok) return this.hookFailedFor(ws, conn, 'canPublish', outcome, id);
      if (outcome.value === false) return this.failLater(ws, conn, 'forbidden', `the canPublish hook refused ${channel.name}`, id);
    }
    for (const trap of hooks.onPublish ?? []) {
      const outcome = await callHook(() => trap(facade, channel.name, message), this.ctx.options.hookTimeout);
      if (!outcome.ok) return this.hookFailedFor(ws, conn, 'onPublish', outcome, id);
      if (outcome.value === false) {
        // Dropped by a trap: nothing is published, and the publisher is answered as for any publish.
        if (id !== null) this.sendLater(ws, conn, events.published(channel.name, id));
        return;
      }
      message = outcome.value;
    }
    const json = JSON.stringify(message);
    if (json === undefined) return this.hookFailedFor(ws, conn, 'onPublish', { error: new Error('a push trap returned a value that is not JSON'), timedOut: false }, id);
    await this.publishAndAck(ws, channel.name, json, id);
  }

  /** `rpc`: the receiver's result, `unknown_method`, or `rpc_failed` with what it threw. */
  private async rpc(ws: Socket, conn: PubSubConnection, method: string, params: unknown, id: RequestId): Promise<void> {
    const receiver = this.ctx.hooks.rpc && Object.hasOwn(this.ctx.hooks.rpc, method) ? this.ctx.hooks.rpc[method] : undefined;
    if (!receiver) return this.failLater(ws, conn, 'unknown_method', `no method ${JSON.stringify(method.slice(0, 50))}`, id);
    const outcome = await callHook(() => receiver(this.facade(ws, conn), params), this.ctx.options.hookTimeout);
    if (!outcome.ok) {
      reportHookFailure(this.ctx, 'rpc', outcome);
      return this.failLater(ws, conn, 'rpc_failed', outcome.error.message, id);
    }
    const json = JSON.stringify(outcome.value ?? null);
    if (json === undefined) return this.failLater(ws, conn, 'rpc_failed', 'the result is not JSON', id);
    this.sendLater(ws, conn, events.result(json, id));
  }

  private hookFailedFor(ws: Socket, conn: PubSubConnection, hook: HookName, outcome: { error: Error; timedOut: boolean }, id: RequestId): void {
    reportHookFailure(this.ctx, hook, outcome);
    this.failLater(ws, conn, 'hook_failed', `the ${hook} hook failed: ${outcome.error.message}`, id);
  }

  /** What hooks see of a connection (made once per connection, when a hook first needs it). */
  private facade(ws: Socket, conn: PubSubConnection): HookConnection {
    if (conn.facade) return conn.facade;
    const later = (act: () => void): void => this.corkLater(ws, conn, act);
    conn.facade = {
      id: conn.id,
      user: conn.user,
      session: conn.session,
      address: conn.address,
      send: (frame) => {
        const text = JSON.stringify(frame);
        if (text !== undefined) later(() => this.send(ws, text));
      },
      subscribe: (name) => {
        const facility = parseChannel(name);
        if (!facility) throw new RangeError(`bad channel name ${JSON.stringify(name.slice(0, 50))}`);
        later(() => this.subscribeAs(ws, { name, facility }, null, true));
      },
      unsubscribe: (name) => {
        const facility = parseChannel(name);
        if (facility) later(() => this.unsubscribe(ws, { name, facility }, null));
      },
      close: () => {
        if (!conn.closed && !conn.leaving) this.goodbye(ws, 'closed', CLOSE.normal);
      },
    };
    return conn.facade;
  }

  private close(ws: Socket, code: number, reason: ArrayBuffer): void {
    const conn = ws.getUserData();
    conn.closed = true;
    this.sockets.delete(ws);
    this.expiring.delete(ws);
    this.ctx.stats.pubsubConnections--;
    this.ctx.admission.release(conn.address);
    try {
      if (!conn.endedByServer) countClientClose(this.ctx.stats, code, reason);
      this.forget(conn);
    } catch (err) {
      reportHandlerError(this.ctx, 'pubsub close', err);
    }
    const onClose = this.ctx.hooks.onClose;
    if (onClose) {
      const facade = this.facade(ws, conn);
      void callHook(() => onClose(facade, code), this.ctx.options.hookTimeout).then((outcome) => {
        if (!outcome.ok) reportHookFailure(this.ctx, 'onClose', outcome);
      });
    }
  }

  /** Drops the connection's subscriptions and the channels' interest. */
  private forget(conn: PubSubConnection): void {
    for (const channel of conn.channels ?? []) {
      this.dropInterest(channel);
      this.ctx.presence?.leave(channel, memberOf(conn));
    }
    this.ctx.stats.subscriptions -= conn.channels?.size ?? 0;
    conn.channels = null;
  }

  /** The built-in rules for a subscribe: the channel's facility, then the token's grants. */
  private maySubscribe(conn: PubSubConnection, channel: ChannelRef): boolean {
    return maySubscribe(channel.facility, conn) || (conn.grants !== null && granted(conn.grants.channels, channel.name));
  }

  /** The built-in rules for a client's publish: the facility and --client-publish, then the token's grants. */
  private mayPublish(conn: PubSubConnection, channel: ChannelRef): boolean {
    return mayClientPublish(channel.facility, this.ctx.options.clientPublish) || (conn.grants !== null && granted(conn.grants.publish, channel.name));
  }

  private subscribe(ws: Socket, channel: ChannelRef, id: RequestId, joinLeave = false, since?: Position): void {
    this.subscribeAs(ws, channel, id, false, joinLeave, since);
  }

  /**
   * `trusted`: a hook subscribes the connection; the built-in rules do not apply. `joinLeave`: the
   * connection also gets the channel's join and leave events (with presence on).
   */
  private subscribeAs(ws: Socket, channel: ChannelRef, id: RequestId, trusted: boolean, joinLeave = false, since?: Position): void {
    const conn = ws.getUserData();
    if (!trusted && !this.maySubscribe(conn, channel)) {
      return this.fail(ws, 'forbidden', `this connection may not subscribe to ${channel.name}`, id);
    }
    const channels = (conn.channels ??= new Set());
    if (!channels.has(channel.name)) {
      if (channels.size >= this.ctx.options.maxSubscriptions) {
        return this.fail(ws, 'too_many_subscriptions', `at most ${this.ctx.options.maxSubscriptions} subscriptions`, id);
      }
      channels.add(channel.name);
      // A recovering subscriber joins the topic after its replay (recover()).
      if (!since || !this.history) ws.subscribe(channel.name);
      this.ctx.stats.subscriptions++;
      this.addInterest(channel.name);
      this.ctx.presence?.join(channel.name, memberOf(conn));
    }
    if (joinLeave && this.ctx.presence) ws.subscribe(JOIN_LEAVE_TOPIC + channel.name);
    const upstream = this.ctx.broker.subscribed(channel.name);
    if (upstream === null) return this.acknowledgeSubscribe(ws, channel.name, id, since);
    // The broker's upstream subscription is not confirmed yet: the ack waits for it, and so do this
    // connection's later requests (in its queue), so that what they publish reaches it too.
    this.enqueue(conn, async () => {
      await upstream;
      this.corkLater(ws, conn, () => this.acknowledgeSubscribe(ws, channel.name, id, since));
    });
  }

  /**
   * A subscribe with `since`: the kept messages after it, then the ack saying whether that was all the
   * client missed, then live messages. The socket leaves the channel's topic (if it was on it) until the
   * replay is out; what goes out on the channel while the history is read is collected for it
   * (flushOutbox). The replay, then what was collected and not replayed (by offset), then the topic
   * subscription and the ack, happen in one turn: nothing is missed and nothing comes twice in between.
   * Later requests of the connection wait in its queue until then.
   */
  private recover(ws: Socket, channel: string, since: Position, id: RequestId): void {
    const conn = ws.getUserData();
    const history = this.history;
    if (!history) return this.send(ws, events.subscribed(channel, id, false));
    ws.unsubscribe(channel);
    const waiting: Recovering = { frames: [] };
    let set = this.recovering.get(channel);
    if (!set) this.recovering.set(channel, (set = new Set()));
    set.add(waiting);
    this.enqueue(conn, async () => {
      let missed: Missed;
      try {
        missed = await history.since(channel, since);
        // Messages the read holds may still be on their way here (Redis sends them on another
        // connection): once they have arrived, send them out now, so that they are collected (and
        // skipped by offset) instead of reaching the socket through the topic after its replay.
        await this.ctx.broker.fence();
        if (this.outbox.length > 0) this.flushOutbox();
      } catch (err) {
        this.historyFailed(err);
        missed = { recovered: false, messages: [] };
      }
      set.delete(waiting);
      if (set.size === 0 && this.recovering.get(channel) === set) this.recovering.delete(channel);
      this.corkLater(ws, conn, () => this.finishRecovery(ws, conn, channel, since, id, missed, waiting.frames));
    });
  }

  private finishRecovery(ws: Socket, conn: PubSubConnection, channel: string, since: Position, id: RequestId, missed: Missed, collected: Collected[]): void {
    if (!conn.channels?.has(channel)) return; // unsubscribed meanwhile (by a hook)
    let recovered = missed.recovered;
    let last = since.offset;
    for (const kept of missed.messages) {
      this.send(ws, events.message(channel, kept.messageJson, false, { offset: kept.offset, epoch: since.epoch }));
      last = kept.offset;
    }
    for (const { position, frame } of collected) {
      const sameEpoch = position !== undefined && position.epoch === since.epoch;
      if (sameEpoch && position.offset <= last) continue; // replayed already
      if (sameEpoch) {
        if (position.offset !== last + 1) recovered = false; // a gap (an outage on the way)
        last = position.offset;
      }
      this.send(ws, frame);
    }
    ws.subscribe(channel);
    this.send(ws, events.subscribed(channel, id, recovered));
  }

  /** The history action: what the subscribe rules allow, the last `limit` kept messages. */
  private async sendHistory(ws: Socket, channel: ChannelRef, limit: number | null, id: RequestId): Promise<void> {
    const history = this.history;
    const conn = ws.getUserData();
    if (!history) return this.fail(ws, 'bad_request', 'history is off on this server (--history)', id);
    if (!this.maySubscribe(conn, channel)) return this.fail(ws, 'forbidden', `this connection may not read ${channel.name}`, id);
    try {
      const { epoch, messages } = await history.last(channel.name, Math.min(limit ?? history.size, history.size));
      this.sendLater(ws, conn, events.history(channel.name, messages, epoch, id));
    } catch (err) {
      this.historyFailed(err);
      this.failLater(ws, conn, 'history_failed', `history could not be read: ${(err as Error).message}`, id);
    }
  }

  /** A history read failed (Redis unreachable): logged at most once per 10 s. */
  private historyFailed(err: unknown): void {
    this.ctx.throttle.pass('history_failed', (suppressed) =>
      this.ctx.log.warn({ err: err instanceof Error ? err.message : String(err), suppressed }, 'history could not be read: the client was told (history_failed, or recovered:false)'),
    );
  }

  /** The subscribed ack: after the replay when the client asked to recover (`since`), else with the cached message. */
  private acknowledgeSubscribe(ws: Socket, channel: string, id: RequestId, since?: Position): void {
    if (since) return this.recover(ws, channel, since, id);
    this.send(ws, events.subscribed(channel, id));
    if (this.ctx.options.expire > 0) void this.sendCached(ws, channel);
  }

  private async sendCached(ws: Socket, channel: string): Promise<void> {
    const conn = ws.getUserData();
    try {
      const cached = await this.ctx.broker.lastMessage(channel);
      if (cached === undefined || !conn.channels?.has(channel)) return;
      this.sendLater(ws, conn, events.message(channel, cached, true));
    } catch (err) {
      this.crashed(ws, conn, 'pubsub cache', err);
    }
  }

  private unsubscribe(ws: Socket, channel: ChannelRef, id: RequestId): void {
    const conn = ws.getUserData();
    if (conn.channels?.delete(channel.name)) {
      ws.unsubscribe(channel.name);
      this.ctx.stats.subscriptions--;
      this.dropInterest(channel.name);
      if (this.ctx.presence) {
        ws.unsubscribe(JOIN_LEAVE_TOPIC + channel.name);
        this.ctx.presence.leave(channel.name, memberOf(conn));
      }
    }
    this.send(ws, events.unsubscribed(channel.name, id));
  }

  /** A presence request: only a subscriber of the channel may ask; the answer lists every instance's. */
  private async presence(ws: Socket, channel: ChannelRef, id: RequestId): Promise<void> {
    const conn = ws.getUserData();
    if (!this.ctx.presence) return this.fail(ws, 'bad_request', 'presence is off on this server (--presence)', id);
    if (!conn.channels?.has(channel.name)) return this.fail(ws, 'forbidden', `only a subscriber of ${channel.name} may ask who is there`, id);
    try {
      const members = await this.ctx.presence.members(channel.name);
      this.sendLater(ws, conn, events.presence(channel.name, members, id));
    } catch (err) {
      this.failLater(ws, conn, 'presence_failed', `presence could not be read: ${(err as Error).message}`, id);
    }
  }

  /** A join or leave anywhere: to this instance's subscribers of the channel that asked for them. */
  private joinOrLeave(kind: 'join' | 'leave', channel: string, member: events.Member): void {
    const topic = JOIN_LEAVE_TOPIC + channel;
    const subscribers = this.ctx.app.numSubscribers(topic);
    if (subscribers === 0) return;
    this.ctx.stats.messagesOut += subscribers;
    this.ctx.app.publish(topic, events.joinLeave(kind, channel, member), false);
  }

  /** A client's publish: checked, then published and acked. */
  private clientPublish(ws: Socket, channel: ChannelRef, messageJson: string, id: RequestId): void {
    if (!this.mayPublish(ws.getUserData(), channel)) {
      const why = channel.facility.kind === 'broadcast' ? 'clients may not publish (--no-client-publish)' : `${channel.facility.kind} channels are published by the server side only`;
      return this.fail(ws, 'forbidden', why, id);
    }
    void this.publishAndAck(ws, channel.name, messageJson, id);
  }

  /** The broker never rejects (broker/types.ts), so the ack follows once it has the message. */
  private async publishAndAck(ws: Socket, channel: string, messageJson: string, id: RequestId): Promise<void> {
    const conn = ws.getUserData();
    try {
      await this.publish(channel, messageJson);
      if (id !== null) this.sendLater(ws, conn, events.published(channel, id));
    } catch (err) {
      this.crashed(ws, conn, 'pubsub publish', err);
    }
  }

  /**
   * Publishes on behalf of a client or of HTTP `/publish`. Resolves once the broker has the message:
   * it then reaches every subscriber connected now, also if shutdown begins meanwhile (see {@link drain}).
   */
  publish(channel: string, messageJson: string): Promise<void> {
    this.ctx.stats.published++;
    return this.ctx.broker.publish(channel, messageJson);
  }

  /**
   * Delivers to the subscribers of this instance only, not through the broker (for a monitor whose
   * source every instance watches by itself). Counted in `published`.
   */
  publishHere(channel: string, messageJson: string): void {
    this.ctx.stats.published++;
    this.deliver(channel, messageJson);
  }

  /** A monitor's wait until publishes reach every instance (MonitorSink.bridged), polled while the broker connects. */
  async bridged(): Promise<boolean> {
    while (this.ctx.broker.state() !== 'ready') {
      if (this.draining || this.stopped) return false;
      await new Promise((resolve) => setTimeout(resolve, BRIDGE_POLL_MS));
    }
    return true;
  }

  /** Whether shutdown has begun; HTTP `/publish` refuses from then on too. */
  get isDraining(): boolean {
    return this.draining;
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
      try {
        this.failLater(ws, conn, 'slow_io_failed', `slow IO failed: ${(err as Error).message}`, id);
      } catch (sendErr) {
        this.crashed(ws, conn, 'pubsub slow', sendErr);
      }
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
  private deliver(channel: string, messageJson: string, position?: Position): void {
    try {
      if (this.history) {
        // Kept whether anyone listens here or not; encoded with its offset as it goes out (flushOutbox).
        this.outbox.push(channel, messageJson);
        this.outboxPositions.push(position);
        this.outboxChars += messageJson.length;
      } else {
        const subscribers = this.ctx.app.numSubscribers(channel);
        if (subscribers === 0) return;
        this.ctx.stats.messagesOut += subscribers;
        const frame = events.message(channel, messageJson);
        this.outbox.push(channel, frame);
        this.outboxChars += frame.length;
      }
      // A turn's outbox goes out early once it holds OUTBOX_FLUSH_CHARS: uWS 20.57 may read one
      // connection for as long as it keeps sending (docs/protocol.md, Deviations), and an outbox held
      // until such a turn ended grew on the heap without a bound. Published inside a handler, the
      // copies leave in more writes, so the mark is past what 20.30 reads from a connection per turn.
      if (this.outboxChars >= OUTBOX_FLUSH_CHARS) this.flushOutbox();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flush);
      }
    } catch (err) {
      reportHandlerError(this.ctx, 'pubsub deliver', err);
    }
  }

  /**
   * Publishes what this turn delivered, sweeping for slow consumers whenever the bytes sent since the
   * last sweep reach the budget, so that no socket passes the limit by more than that between looks.
   */
  private flushOutbox(): void {
    const outbox = this.outbox;
    const positions = this.outboxPositions;
    this.outbox = [];
    this.outboxPositions = [];
    this.outboxChars = 0;
    const app = this.ctx.app;
    try {
      for (let i = 0; i < outbox.length; i += 2) {
        const channel = outbox[i];
        let frame = outbox[i + 1];
        if (this.history) {
          const position = this.history.keep(channel, frame, positions[i / 2]);
          frame = events.message(channel, frame, false, position);
          if (this.recovering.size > 0) this.collectForRecoveries(channel, position, frame);
          const subscribers = app.numSubscribers(channel);
          if (subscribers === 0) continue;
          this.ctx.stats.messagesOut += subscribers;
        }
        app.publish(channel, frame, false);
        this.unswept += frame.length;
        if (this.unswept >= this.sweepBudget) this.sweepSlowConsumers();
      }
    } catch (err) {
      reportHandlerError(this.ctx, 'pubsub flush', err);
    }
  }

  /** Keeps a message that goes out on `channel` for the subscribers whose replay is being read. */
  private collectForRecoveries(channel: string, position: Position | undefined, frame: string): void {
    const waiting = this.recovering.get(channel);
    if (waiting) for (const recovering of waiting) recovering.frames.push({ position, frame });
  }

  /**
   * Shutdown, first half: publishes and slow requests are refused (`shutting_down`) from now on, and
   * everything the broker accepted before (acked, or about to be) is delivered to the subscribers here.
   * The caller says goodbye right after, in the same turn, so nothing is delivered in between.
   */
  async drain(): Promise<void> {
    this.draining = true;
    await this.ctx.broker.flush();
    this.flushOutbox();
  }

  /** Sends `goodbye` and closes every socket (shutdown). */
  /**
   * Shutdown, second half: sends `goodbye` to every socket and takes it off every channel, so goodbye
   * is the last frame it gets. The sockets are closed by {@link endAll} once what they were sent has
   * left this process: uWS ends a socket with its buffered frames still in memory, and a process
   * that exits then takes them along (the client sees 1006 and loses messages it was acked).
   */
  goodbyeAll(reason: GoodbyeReason): void {
    for (const ws of this.sockets) {
      const conn = ws.getUserData();
      if (conn.leaving) continue;
      conn.leaving = true;
      ws.cork(() => ws.send(events.goodbye(reason), false));
      for (const channel of conn.channels ?? []) ws.unsubscribe(channel);
    }
  }

  /** Bytes still buffered in this process for the sockets, summed. */
  buffered(): number {
    return bufferedBytes(this.sockets);
  }

  /** Closes every socket with `code` (after {@link goodbyeAll}). */
  endAll(code: number, reason: GoodbyeReason): void {
    endAll(this.sockets, code, reason);
  }

  /** Stops the sweep. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.sweepTimer);
  }

  /**
   * `refresh`: a new token for the same user replaces the old one (its expiry and grants) before the
   * old one runs out. A bad token, another user's, or tokens being off: error `forbidden`, and the
   * connection goes on under the token it had.
   */
  private async refresh(ws: Socket, token: string, id: RequestId): Promise<void> {
    const conn = ws.getUserData();
    const refuse = (why: string): void => this.failLater(ws, conn, 'forbidden', why, id);
    const verifier = this.ctx.verifier;
    if (!verifier) return refuse('tokens are off on this server (no --jwt-secret)');
    if (conn.user === null) return refuse('an anonymous connection has no token to refresh: connect with one');
    let identity: TokenIdentity;
    try {
      identity = await verifier.verify(token);
    } catch (err) {
      if (err instanceof TokenRefused) return refuse(err.message);
      return this.crashed(ws, conn, 'pubsub refresh', err);
    }
    if (conn.closed || conn.leaving) return;
    if (identity.user !== conn.user) return refuse(`the token is for another user (${identity.user}, not ${conn.user})`);
    conn.grants = { channels: identity.channels, publish: identity.publish };
    conn.expiresAt = identity.expiresAt;
    if (conn.expiresAt === null) this.expiring.delete(ws);
    else this.expiring.add(ws);
    this.sendLater(ws, conn, events.refreshed(id));
  }

  /** Says goodbye (`token_expired`, 1008) to every connection whose token has run out. */
  private expireTokens(now: number): void {
    if (this.stopped) return;
    for (const ws of this.expiring) {
      const conn = ws.getUserData();
      if (conn.expiresAt === null || conn.expiresAt > now || conn.closed || conn.leaving) continue;
      this.expiring.delete(ws);
      try {
        this.goodbye(ws, 'token_expired', CLOSE.policy);
      } catch (err) {
        reportHandlerError(this.ctx, 'pubsub token expiry', err);
      }
    }
  }

  private goodbye(ws: Socket, reason: GoodbyeReason, code: number): void {
    const conn = ws.getUserData();
    if (conn.closed) return;
    conn.endedByServer = true;
    ws.cork(() => {
      ws.send(events.goodbye(reason));
      ws.end(code, reason);
    });
  }

  private closeTooBig(ws: Socket): void {
    this.ctx.stats.tooLarge++;
    ws.getUserData().endedByServer = true;
    ws.end(CLOSE.tooBig, `frame over ${this.ctx.options.maxPayload} bytes`);
  }

  private fail(ws: Socket, code: ErrorCode, text: string, id: RequestId): void {
    this.ctx.stats.errors[code]++;
    this.send(ws, events.error(code, text, id));
  }

  private failLater(ws: Socket, conn: PubSubConnection, code: ErrorCode, text: string, id: RequestId): void {
    this.corkLater(ws, conn, () => this.fail(ws, code, text, id));
  }

  /**
   * Sends from inside a uWS handler. A reply counts toward the limit like a published message: a client
   * that sends requests but reads no replies is a slow consumer too.
   */
  private send(ws: Socket, text: string): void {
    const result = ws.send(text, false);
    this.ctx.stats.messagesOut++;
    if (result === SEND.success) return;
    if (result === SEND.dropped) this.ctx.stats.dropped++; // uWS has no cap here (see above): never expected
    if (ws.getBufferedAmount() > this.ctx.options.maxBackpressure) this.slowConsumer(ws);
  }

  /**
   * Sends from outside a uWS handler (after an await). The socket may have closed meanwhile, and a
   * closed uWS socket throws on any access, so the caller passes the state it read before awaiting.
   */
  private sendLater(ws: Socket, conn: PubSubConnection, text: string): void {
    this.corkLater(ws, conn, () => this.send(ws, text));
  }

  /** Runs `act` corked, from outside a uWS handler, unless the socket has closed or said goodbye meanwhile. */
  private corkLater(ws: Socket, conn: PubSubConnection, act: () => void): void {
    if (!conn.closed && !conn.leaving) ws.cork(act);
  }

  private slowConsumer(ws: Socket): void {
    const count = ++this.ctx.stats.slowConsumers;
    const conn = ws.getUserData();
    const buffered = ws.getBufferedAmount();
    this.ctx.throttle.pass('slow_consumer', (suppressed) =>
      this.ctx.log.warn({ connection: conn.id, address: conn.address, buffered, limit: this.ctx.options.maxBackpressure, count, suppressed }, 'slow consumer closed (goodbye, 1008)'),
    );
    this.goodbye(ws, 'slow_consumer', CLOSE.policy);
  }

  private sweepSlowConsumers(): void {
    if (this.stopped) return;
    const started = performance.now();
    this.unswept = 0;
    const limit = this.ctx.options.maxBackpressure;
    for (const ws of this.sockets) {
      if (ws.getBufferedAmount() > limit) this.slowConsumer(ws);
    }
    this.ctx.stats.sweeps++;
    this.ctx.stats.sweepMs += performance.now() - started;
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
