/**
 * The `/pubsub` WebSocket endpoint: the uWS behaviour is a set of one-line delegates to
 * {@link PubSubEndpoint}, which turns parsed frames into what the hub (server/hub/), the access rule
 * (server/access.ts) and the broker do, and answers.
 *
 * No frame can take the process down: the codec never throws (a bad frame is an error frame), and each
 * handler has a last guard, so an exception that escapes one (a bug) ends that connection alone with
 * goodbye `server_error` and 1011, counted in `handler_errors`.
 *
 * Where the rest lives: a connection's state and the ways to write to it in pubsub-connection.ts, the
 * requests that wait (hooks, the per-connection queue) in pubsub-hooks.ts, token refresh and expiry in
 * pubsub-tokens.ts, the upgrade in pubsub-upgrade.ts; the fan-out, recovery and the slow-consumer
 * sweep in server/hub/.
 */
import { AccessRule, type Verdict } from '../access.js';
import type { WebSocketBehavior } from '../engine.js';
import { hasRequestHooks } from '../hooks.js';
import type { Position } from '../history/types.js';
import { SlowConsumerSweep } from '../hub/backpressure.js';
import { answerBudget, firstWithin, newestWithin } from '../hub/answer-budget.js';
import { Fanout } from '../hub/fanout.js';
import { Recovery } from '../hub/recovery.js';
import { channelRef, events, parseClientFrame, type ChannelRef, type ClientAction, type GoodbyeReason, type RequestId } from '../protocol/index.js';
import { countClientClose } from '../stats.js';
import { CLOSE, reportHandlerError, userDataOf, type ServerContext } from './context.js';
import { OpenSockets } from './open-sockets.js';
import { ConnectionWriter, PAYLOAD_READ_FACTOR, type PubSubConnection, type PubSubSocket } from './pubsub-connection.js';
import { RequestQueue } from './pubsub-hooks.js';
import { TokenLife } from './pubsub-tokens.js';
import { PubSubUpgrades } from './pubsub-upgrade.js';

export type { PubSubConnection } from './pubsub-connection.js';

/** The sweep also runs this often, for a socket over the limit while nothing is published; so does token expiry. */
const SWEEP_INTERVAL_MS = 1000;

/**
 * How long a slow consumer that was cut keeps its connection for the goodbye to be read: it ends with
 * 1008 as soon as it has read everything up to the goodbye, or when this has passed (docs/protocol.md).
 */
export const CUT_LINGER_MS = 60_000;

/** What a request in progress holds besides its frame, about: its parsed form, promise and closures (--max-pending-bytes). */
export const PENDING_REQUEST_BYTES = 256;

/** How often a monitor waiting for the broker to connect looks again (bridged()). */
const BRIDGE_POLL_MS = 50;

/** A connection as presence lists it. */
function memberOf(conn: PubSubConnection): events.Member {
  return { connection: conn.id, user: conn.user, session: conn.session };
}

export class PubSubEndpoint {
  /** Every open `/pubsub` socket (for shutdown and the backpressure sweep). */
  readonly sockets = new OpenSockets<PubSubConnection>((ws, reason) => this.goodbye(ws, reason));
  private readonly fanout: Fanout;
  private readonly sweep: SlowConsumerSweep<PubSubSocket>;
  private readonly writer: ConnectionWriter;
  private readonly access: AccessRule;
  private readonly queue: RequestQueue;
  private readonly tokens: TokenLife;
  /** Subscribes with `since` (null without `--history`). */
  private readonly recovery: Recovery | null;
  private readonly upgrades: PubSubUpgrades;
  private readonly timer: NodeJS.Timeout;
  /** Slow consumers cut and not yet ended, with when they end at the latest (epoch ms). */
  private readonly lingering = new Map<PubSubSocket, number>();
  private stopped = false;
  /** Set when shutdown begins: publishes and slow requests are refused from then on. */
  private draining = false;
  /** Whether hooks handle requests: then each connection's requests run one at a time, in order. */
  private readonly sequential: boolean;

  constructor(private readonly ctx: ServerContext) {
    const { app, options, stats } = ctx;
    this.sweep = new SlowConsumerSweep({
      limit: options.maxBackpressure,
      connections: this.sockets,
      buffered: (ws) => ws.getBufferedAmount(),
      slow: (ws) => this.cut(ws),
      stats,
    });
    this.writer = new ConnectionWriter(ctx, this.sweep);
    const topics = { publish: (topic: string, frame: string) => void app.publish(topic, frame, false), subscribers: (topic: string) => app.numSubscribers(topic) };
    this.fanout = new Fanout({ topics, broker: ctx.broker, history: ctx.history && { keeper: ctx.keeper }, stats, sweep: this.sweep, failed: (where, err) => reportHandlerError(ctx, where, err) });
    this.recovery = ctx.history && new Recovery(ctx.history, ctx.broker, this.fanout, (err) => this.backendFailed('history_failed', err));
    ctx.presence?.onEvent((kind, channel, member) => this.fanout.joinOrLeave(kind, channel, member));
    this.access = new AccessRule(ctx.hooks, options.clientPublish, options.hookTimeout);
    this.queue = new RequestQueue(ctx, this.writer, this.access, {
      carryOut: (ws, conn, request) => this.carryOut(ws, conn, request),
      subscribeTrusted: (ws, channel) => this.subscribe(ws, channel, null, {}),
      unsubscribe: (ws, channel, id) => this.unsubscribe(ws, channel, id),
      publishAndAck: (ws, conn, channel, json, id) => this.publishAndAck(ws, conn, channel, json, id),
      historyOn: ctx.history !== null,
      presenceOn: ctx.presence !== null,
    });
    this.tokens = new TokenLife(ctx, this.writer, (ws, conn, old) => this.regranted(ws, conn, old));
    this.sequential = hasRequestHooks(ctx.hooks);
    this.upgrades = new PubSubUpgrades(ctx);
    this.timer = setInterval(() => {
      if (this.stopped) return;
      this.sweep.sweep();
      this.tokens.expire(Date.now());
      this.endLingering(Date.now());
    }, SWEEP_INTERVAL_MS).unref();
  }

  /** The uWS behaviour of `/pubsub`. */
  behavior(): WebSocketBehavior<PubSubConnection> {
    const { options, uws } = this.ctx;
    return {
      compression: uws.DISABLED,
      maxPayloadLength: options.maxPayload * PAYLOAD_READ_FACTOR,
      // No cap of uWS's own: past it uWS drops every send, goodbye included (hub/backpressure.ts).
      maxBackpressure: 0,
      closeOnBackpressureLimit: false,
      idleTimeout: options.idleTimeout,
      sendPingsAutomatically: options.idleTimeout > 0,
      upgrade: (res, req, context) => this.upgrades.upgrade(res, req, context),
      open: (ws) => this.open(ws),
      message: (ws, data, isBinary) => this.message(ws, data, isBinary),
      drain: (ws) => this.drained(ws),
      close: (ws, code, reason) => this.close(ws, code, reason),
    };
  }

  /**
   * A slow consumer: off every channel at once (it is sent nothing more, so its backlog stops growing),
   * its goodbye queued behind what it was sent, and its end (1008) when it has read all of that, so that
   * a client that resumes reading within {@link CUT_LINGER_MS} reads the goodbye and the close frame.
   * Ending it at once would start uWS's close timeout, after which the socket is reset and a client that
   * comes back reads neither.
   */
  private cut(ws: PubSubSocket): void {
    const conn = userDataOf(ws);
    if (conn.closed || conn.cut) return;
    this.writer.countSlowConsumer(ws);
    conn.cut = conn.leaving = conn.endedByServer = true;
    this.sockets.delete(ws); // no longer swept, and shutdown need not wait for its backlog
    for (const channel of conn.channels ?? []) {
      ws.unsubscribe(channel);
      if (this.ctx.presence) ws.unsubscribe(Fanout.joinLeaveTopic(channel));
    }
    this.forget(conn);
    ws.cork(() => ws.send(events.goodbye('slow_consumer'), false));
    if (ws.getBufferedAmount() === 0) return void ws.end(CLOSE.policy, 'slow_consumer');
    this.lingering.set(ws, Date.now() + CUT_LINGER_MS);
  }

  /**
   * After a refresh: the channels that the old token's grants allowed and the new one's do not are left,
   * each with an `unsubscribed` event without an id (inside a cork).
   */
  private regranted(ws: PubSubSocket, conn: PubSubConnection, old: PubSubConnection['grants']): void {
    for (const name of [...(conn.channels ?? [])]) {
      const channel = channelRef(name);
      if (channel && this.access.mayRead({ ...conn, grants: old }, channel) && !this.access.mayRead(conn, channel)) this.unsubscribe(ws, channel, null);
    }
  }

  /** uWS sent some of a socket's backlog: a cut consumer that has read it all is ended now. */
  private drained(ws: PubSubSocket): void {
    if (!this.lingering.has(ws) || ws.getBufferedAmount() > 0) return;
    this.lingering.delete(ws);
    ws.end(CLOSE.policy, 'slow_consumer');
  }

  /** Ends the cut consumers whose time to read their goodbye has passed (all of them at `now` = Infinity). */
  private endLingering(now: number): void {
    for (const [ws, deadline] of this.lingering) {
      if (deadline > now) continue;
      this.lingering.delete(ws);
      ws.end(CLOSE.policy, 'slow_consumer');
    }
  }

  private open(ws: PubSubSocket): void {
    const conn = userDataOf(ws);
    this.sockets.add(ws);
    this.tokens.watch(ws, conn);
    this.ctx.stats.pubsubConnections++;
    this.ctx.stats.connectionsTotal++;
    // Nothing can be sent to the socket between the upgrade and the microtask: welcome stays first.
    if (this.upgrades.inCork) queueMicrotask(() => this.welcome(ws, conn, true));
    else this.welcome(ws, conn, false);
    // In the connection's queue, so requests wait for it; it runs after the welcome's microtask.
    if (this.ctx.hooks.onOpen) this.queue.enqueue(conn, () => this.queue.onOpen(ws, conn));
  }

  /** The first frame; `later`: outside any uWS handler, so it corks itself. */
  private welcome(ws: PubSubSocket, conn: PubSubConnection, later: boolean): void {
    const frame = events.welcome(conn.id, conn.user, conn.session);
    try {
      if (later) this.writer.sendLater(ws, conn, frame);
      else this.writer.send(ws, frame);
    } catch (err) {
      this.writer.crashed(ws, conn, 'pubsub open', err);
    }
  }

  private message(ws: PubSubSocket, data: ArrayBuffer, isBinary: boolean): void {
    const conn = userDataOf(ws);
    if (conn.closed || conn.leaving) return;
    try {
      this.handle(ws, conn, data, isBinary);
    } catch (err) {
      this.writer.crashed(ws, conn, 'pubsub message', err);
    }
  }

  private close(ws: PubSubSocket, code: number, reason: ArrayBuffer): void {
    const conn = userDataOf(ws);
    conn.closed = true;
    this.sockets.delete(ws);
    this.lingering.delete(ws);
    this.tokens.forget(ws);
    this.ctx.stats.pubsubConnections--;
    this.ctx.admission.release(conn.address);
    try {
      if (!conn.endedByServer) countClientClose(this.ctx.stats, code, reason);
      this.forget(conn);
    } catch (err) {
      reportHandlerError(this.ctx, 'pubsub close', err);
    }
    this.queue.onClose(ws, conn, code);
  }

  /** Drops the connection's subscriptions and the channels' interest. */
  private forget(conn: PubSubConnection): void {
    for (const channel of conn.channels ?? []) {
      this.fanout.dropInterest(channel);
      this.ctx.presence?.leave(channel, memberOf(conn));
    }
    this.ctx.stats.subscriptions -= conn.channels?.size ?? 0;
    conn.channels = null;
  }

  private handle(ws: PubSubSocket, conn: PubSubConnection, data: ArrayBuffer, isBinary: boolean): void {
    const { stats, options } = this.ctx;
    stats.messagesIn++;
    if (data.byteLength > options.maxPayload) return this.writer.closeTooBig(ws);
    if (isBinary) return this.writer.fail(ws, 'binary_not_supported', 'binary frames are not part of the protocol', null);
    const request = parseClientFrame(Buffer.from(data).toString('utf8'), options.maxJsonDepth);
    if (request.action === 'error') return this.writer.fail(ws, request.code, request.message, request.id);
    if (this.draining && (request.action === 'publish' || request.action === 'slow')) {
      return this.writer.fail(ws, 'shutting_down', `the server is shutting down: this ${request.action} was not taken`, request.id);
    }
    if (options.rateLimit > 0 && this.overRate(conn)) {
      return this.writer.fail(ws, 'rate_limited', `more than ${options.rateLimit} frames per second`, request.id);
    }
    const bytes = data.byteLength + PENDING_REQUEST_BYTES;
    if (conn.pending >= options.maxPendingRequests || conn.pendingBytes + bytes > options.maxPendingBytes) {
      return this.writer.fail(ws, 'busy', `${conn.pending} requests of this connection are in progress (${conn.pendingBytes} bytes; --max-pending-requests ${options.maxPendingRequests}, --max-pending-bytes ${options.maxPendingBytes}): this ${request.action} was not taken`, request.id);
    }
    if (this.sequential || conn.queue) return this.pendingUntil(conn, bytes, this.queued(ws, conn, request));
    // Without request hooks the access rule answers at once.
    const verdict = this.queue.verdict(ws, conn, request);
    if (verdict instanceof Promise) return this.pendingUntil(conn, bytes, this.queued(ws, conn, request, verdict));
    if (verdict && !verdict.allowed) return this.queue.refuse(ws, conn, verdict, request.id, false);
    this.pendingUntil(conn, bytes, this.carryOut(ws, conn, request));
  }

  /** Runs a request in the connection's queue; resolves when it is answered (a `slow` wait included). */
  private async queued(ws: PubSubSocket, conn: PubSubConnection, request: ClientAction, verdict?: Promise<Verdict>): Promise<void> {
    let later: Promise<void> | undefined;
    await this.queue.enqueue(conn, async () => {
      later = (await this.queue.handle(ws, conn, request, verdict))?.later;
    });
    await later;
  }

  /** Counts a request of `bytes` as pending until `work` (if it is asynchronous) has answered it. */
  private pendingUntil(conn: PubSubConnection, bytes: number, work: Promise<void> | void): void {
    if (!(work instanceof Promise)) return;
    conn.pending++;
    conn.pendingBytes += bytes;
    void work.finally(() => {
      conn.pending--;
      conn.pendingBytes -= bytes;
    });
  }

  /**
   * Carries out a request that passed every check, inside a uWS handler or a cork; a promise when its
   * answer comes later (it never rejects: every failure is an error frame).
   */
  private carryOut(ws: PubSubSocket, conn: PubSubConnection, request: ClientAction): Promise<void> | void {
    switch (request.action) {
      case 'subscribe':
        return this.subscribe(ws, request.channel, request.id, { joinLeave: request.joinLeave, since: request.since });
      case 'history':
        return this.sendHistory(ws, conn, request.channel, request.limit, request.id);
      case 'presence':
        return this.presence(ws, conn, request.channel, request.id);
      case 'unsubscribe':
        return this.unsubscribe(ws, request.channel, request.id);
      case 'publish':
        return this.publishAndAck(ws, conn, request.channel, request.messageJson, request.id);
      case 'ping':
        return this.writer.send(ws, events.pong(request.id));
      case 'slow':
        return this.slow(ws, conn, request.ms, request.id);
      case 'refresh':
        return this.tokens.refresh(ws, conn, request.token, request.id);
      case 'rpc':
        return this.queue.rpc(ws, conn, request.method, request.params, request.id);
    }
  }

  /**
   * A subscribe the access rule allowed, or one a hook made. `joinLeave`: the connection also gets the
   * channel's join and leave events (with presence on); `since`: it recovers what it missed first (with
   * history on).
   */
  private subscribe(ws: PubSubSocket, channel: ChannelRef, id: RequestId, { joinLeave = false, since }: { joinLeave?: boolean; since?: Position }): void {
    const conn = userDataOf(ws);
    const channels = (conn.channels ??= new Set());
    if (!channels.has(channel.name)) {
      if (channels.size >= this.ctx.options.maxSubscriptions) {
        return this.writer.fail(ws, 'too_many_subscriptions', `at most ${this.ctx.options.maxSubscriptions} subscriptions`, id);
      }
      channels.add(channel.name);
      // A recovering subscriber joins the topic after its replay (recover()).
      if (!since || !this.recovery) ws.subscribe(channel.name);
      this.ctx.stats.subscriptions++;
      this.fanout.addInterest(channel);
      this.ctx.presence?.join(channel.name, memberOf(conn));
    }
    if (joinLeave && this.ctx.presence) ws.subscribe(Fanout.joinLeaveTopic(channel.name));
    const upstream = this.ctx.broker.subscribed(channel);
    if (upstream === null) return this.acknowledgeSubscribe(ws, conn, channel, id, since);
    // The broker's upstream subscription is not confirmed yet: the ack waits for it, and so do this
    // connection's later requests (in its queue), so that what they publish reaches it too.
    this.queue.enqueue(conn, async () => {
      await upstream;
      this.writer.corkLater(ws, conn, () => this.acknowledgeSubscribe(ws, conn, channel, id, since));
    });
  }

  /** The subscribed ack: after the replay when the client asked to recover (`since`), else with the cached message. */
  private acknowledgeSubscribe(ws: PubSubSocket, conn: PubSubConnection, channel: ChannelRef, id: RequestId, since?: Position): void {
    if (since) return this.recover(ws, conn, channel.name, since, id);
    this.writer.send(ws, events.subscribed(channel.name, id));
    if (this.ctx.options.expire > 0) void this.sendCached(ws, conn, channel);
  }

  /**
   * A subscribe with `since` (hub/recovery.ts): off the channel's topic and collecting now; the read,
   * then the replay, the topic and the ack in one corked turn, in the connection's queue (later
   * requests wait behind it).
   */
  private recover(ws: PubSubSocket, conn: PubSubConnection, channel: string, since: Position, id: RequestId): void {
    if (!this.recovery) return this.writer.send(ws, events.subscribed(channel, id, false));
    ws.unsubscribe(channel);
    const read = this.recovery.begin(channel, since);
    this.queue.enqueue(conn, async () => {
      try {
        const replay = await read();
        this.writer.corkLater(ws, conn, () => {
          if (!conn.channels?.has(channel)) return; // unsubscribed meanwhile (by a hook)
          // A replay larger than an answer may be keeps its newest messages, and is no recovery.
          const { kept, truncated } = newestWithin(replay.frames, Buffer.byteLength, this.answerBudget(ws));
          for (const frame of kept) this.writer.send(ws, frame);
          ws.subscribe(channel);
          this.writer.send(ws, events.subscribed(channel, id, replay.recovered && !truncated));
        });
      } catch (err) {
        this.writer.crashed(ws, conn, 'pubsub recovery', err);
      }
    });
  }

  private async sendCached(ws: PubSubSocket, conn: PubSubConnection, channel: ChannelRef): Promise<void> {
    try {
      const cached = await this.ctx.broker.lastMessage(channel);
      if (cached === undefined || !conn.channels?.has(channel.name)) return;
      this.writer.sendLater(ws, conn, events.message(channel.name, cached, true));
    } catch (err) {
      this.writer.crashed(ws, conn, 'pubsub cache', err);
    }
  }

  /** The history action: the last `limit` kept messages, as the access rule allowed. */
  private async sendHistory(ws: PubSubSocket, conn: PubSubConnection, channel: ChannelRef, limit: number | null, id: RequestId): Promise<void> {
    const history = this.ctx.history;
    if (!history) return this.writer.fail(ws, 'bad_request', 'history is off on this server (--history)', id);
    try {
      const { epoch, messages } = await history.last(channel.name, Math.min(limit ?? history.size, history.size));
      this.writer.corkLater(ws, conn, () => {
        const { kept, truncated } = newestWithin(messages, events.historyEntryBytes, this.answerBudget(ws));
        this.writer.send(ws, events.history(channel.name, kept, epoch, id, truncated));
      });
    } catch (err) {
      this.backendFailed('history_failed', err);
      this.writer.failLater(ws, conn, 'history_failed', 'history could not be read (the server logged why)', id);
    }
  }

  /** The bytes an answer to this connection may take now (hub/answer-budget.ts). */
  private answerBudget(ws: PubSubSocket): number {
    return answerBudget(this.ctx.options.maxBackpressure, ws.getBufferedAmount());
  }

  /** A history read failed (Redis unreachable): logged at most once per 10 s. */
  /**
   * A read of a backend failed (Redis, PostgreSQL): logged with why, at most once per 10 s per code; the
   * client is told the code only, since the error's text may name what it must not learn.
   */
  private backendFailed(code: 'history_failed' | 'presence_failed' | 'slow_io_failed', err: unknown): void {
    this.ctx.throttle.pass(code, (suppressed) =>
      this.ctx.log.warn({ err: err instanceof Error ? err.message : String(err), code, suppressed }, `${code}: the client was told the code, not why`),
    );
  }

  private unsubscribe(ws: PubSubSocket, channel: ChannelRef, id: RequestId): void {
    const conn = userDataOf(ws);
    if (conn.channels?.delete(channel.name)) {
      ws.unsubscribe(channel.name);
      this.ctx.stats.subscriptions--;
      this.fanout.dropInterest(channel.name);
      if (this.ctx.presence) {
        ws.unsubscribe(Fanout.joinLeaveTopic(channel.name));
        this.ctx.presence.leave(channel.name, memberOf(conn));
      }
    }
    this.writer.send(ws, events.unsubscribed(channel.name, id));
  }

  /** A presence request: only a subscriber of the channel may ask; the answer lists every instance's. */
  private async presence(ws: PubSubSocket, conn: PubSubConnection, channel: ChannelRef, id: RequestId): Promise<void> {
    if (!this.ctx.presence) return this.writer.fail(ws, 'bad_request', 'presence is off on this server (--presence)', id);
    if (!conn.channels?.has(channel.name)) return this.writer.fail(ws, 'forbidden', `only a subscriber of ${channel.name} may ask who is there`, id);
    try {
      const members = await this.ctx.presence.members(channel.name);
      this.writer.corkLater(ws, conn, () => {
        const { kept, truncated } = firstWithin(members, (member) => JSON.stringify(member).length + 1, this.answerBudget(ws));
        this.writer.send(ws, events.presence(channel.name, kept, id, truncated));
      });
    } catch (err) {
      this.backendFailed('presence_failed', err);
      this.writer.failLater(ws, conn, 'presence_failed', 'presence could not be read (the server logged why)', id);
    }
  }

  /** The broker never rejects (broker/types.ts), so the ack follows once it has the message. */
  private async publishAndAck(ws: PubSubSocket, conn: PubSubConnection, channel: ChannelRef, messageJson: string, id: RequestId): Promise<void> {
    try {
      await this.publish(channel, messageJson);
      if (id !== null) this.writer.sendLater(ws, conn, events.published(channel.name, id));
    } catch (err) {
      this.writer.crashed(ws, conn, 'pubsub publish', err);
    }
  }

  /**
   * Publishes on behalf of a client, HTTP `/publish` or a monitor. Resolves once the broker has the
   * message: it then reaches every subscriber connected now, also if shutdown begins meanwhile (see
   * {@link drain}). A name (a monitor's) is parsed here; a client's and HTTP's come parsed.
   * @throws RangeError for a name outside the channel grammar.
   */
  publish(channel: ChannelRef | string, messageJson: string): Promise<Position | undefined> {
    const ref = typeof channel === 'string' ? channelRef(channel) : channel;
    if (!ref) throw new RangeError(`not a channel name: ${JSON.stringify(String(channel).slice(0, 50))}`);
    this.ctx.stats.published++;
    return this.ctx.broker.publish(ref, messageJson);
  }

  /**
   * Delivers to the subscribers of this instance only, not through the broker (for a monitor whose
   * source every instance watches by itself). Counted in `published`.
   */
  publishHere(channel: string, messageJson: string): void {
    this.ctx.stats.published++;
    this.fanout.deliver(channel, messageJson);
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

  private async slow(ws: PubSubSocket, conn: PubSubConnection, ms: number, id: RequestId): Promise<void> {
    const { stats, slowIo } = this.ctx;
    if (slowIo === null) return this.writer.fail(ws, 'disabled', 'the slow action is off on this server (a benchmark starts it with --slow-io)', id);
    stats.slowPending++;
    try {
      await slowIo.wait(ms);
      stats.slowDone++;
      this.writer.sendLater(ws, conn, events.slowDone(ms, id));
    } catch (err) {
      stats.slowFailed++;
      this.backendFailed('slow_io_failed', err);
      try {
        this.writer.failLater(ws, conn, 'slow_io_failed', 'slow IO failed (the server logged why)', id);
      } catch (sendErr) {
        this.writer.crashed(ws, conn, 'pubsub slow', sendErr);
      }
    } finally {
      stats.slowPending--;
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

  /**
   * Shutdown, first half: publishes and slow requests are refused (`shutting_down`) from now on, and
   * everything the broker accepted before (acked, or about to be) is delivered to the subscribers here.
   * The caller says goodbye right after, in the same turn, so nothing is delivered in between.
   */
  async drain(): Promise<void> {
    this.draining = true;
    await this.ctx.broker.flush();
    this.fanout.flush();
  }

  /**
   * Shutdown, second half (through {@link OpenSockets.goodbyeAll}): `goodbye` to one socket, and off every
   * channel, so goodbye is the last frame it gets.
   */
  private goodbye(ws: PubSubSocket, reason: GoodbyeReason): void {
    const conn = userDataOf(ws);
    if (conn.leaving) return;
    conn.leaving = true;
    ws.cork(() => ws.send(events.goodbye(reason), false));
    for (const channel of conn.channels ?? []) ws.unsubscribe(channel);
  }

  /** Stops the sweep and token expiry. */
  stop(): void {
    this.stopped = true;
    this.sweep.stop();
    clearInterval(this.timer);
    this.endLingering(Infinity);
  }
}
