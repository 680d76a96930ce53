/**
 * The `/pubsub` requests that wait: with application hooks that handle requests (`canSubscribe`,
 * `canPublish`, push traps, receivers), and after anything that made a connection's requests queue (an
 * `onOpen` hook, a subscribe waiting for the broker's upstream subscription, a recovery), every request
 * of the connection runs in its queue, one after another in the order sent, while other connections go
 * on. A hook is timed by callHook and never throws: a failed hook is the error `hook_failed` for that
 * connection only.
 */
import type { AccessRule, Verdict } from '../access.js';
import { callHook, ClientError, toldClient, type HookConnection, type HookName } from '../hooks.js';
import { events, parseChannel, type ChannelRef, type ClientAction, type RequestId } from '../protocol/index.js';
import { CLOSE, reportHookFailure, type ServerContext } from './context.js';
import type { ConnectionWriter, PubSubConnection, PubSubSocket } from './pubsub-connection.js';

/** What the queue needs of the endpoint: carrying out a request that passed its checks, and the subscriptions a hook makes. */
export interface RequestTarget {
  /** Carries out a request that passed every check, inside a uWS handler or a cork; a promise when it answers later. */
  carryOut(ws: PubSubSocket, conn: PubSubConnection, request: ClientAction): Promise<void> | void;
  /** Subscribes from the server side (a hook's `conn.subscribe`): no access rule. */
  subscribeTrusted(ws: PubSubSocket, channel: ChannelRef): void;
  unsubscribe(ws: PubSubSocket, channel: ChannelRef, id: RequestId): void;
  /** Publishes and acks (the broker never rejects). */
  publishAndAck(ws: PubSubSocket, conn: PubSubConnection, channel: ChannelRef, messageJson: string, id: RequestId): Promise<void>;
  /** Whether history (`--history`) and presence (`--presence`) are on: a request for one that is off fails before any access check. */
  readonly historyOn: boolean;
  readonly presenceOn: boolean;
}

export class RequestQueue {
  constructor(
    private readonly ctx: ServerContext,
    private readonly writer: ConnectionWriter,
    private readonly access: AccessRule,
    private readonly target: RequestTarget,
  ) {}

  /**
   * Runs `task` after the connection's earlier queued work (tasks never reject: each ends in a frame);
   * resolves when it has run.
   */
  enqueue(conn: PubSubConnection, task: () => Promise<void>): Promise<void> {
    return (conn.queue = (conn.queue ?? Promise.resolve()).then(task));
  }

  /**
   * The access rule's verdict on a request that reads or publishes a channel; null for one that does
   * neither, or that fails before any read (history or presence off, presence of a channel the
   * connection is not on): carrying it out says why. A promise only when a hook takes part.
   */
  verdict(ws: PubSubSocket, conn: PubSubConnection, request: ClientAction, message: () => unknown = () => parsedMessage(request)): Verdict | Promise<Verdict> | null {
    const facade = (): HookConnection => this.facade(ws, conn);
    switch (request.action) {
      case 'subscribe':
        return this.access.read(conn, request.channel, 'subscribe', facade);
      case 'history':
        return this.target.historyOn ? this.access.read(conn, request.channel, 'history', facade) : null;
      case 'presence':
        return this.target.presenceOn && conn.channels?.has(request.channel.name) ? this.access.read(conn, request.channel, 'presence', facade) : null;
      case 'publish':
        return this.access.publish(conn, request.channel, message, facade);
      default:
        return null;
    }
  }

  /** A refused request's error frame: `forbidden`, or `hook_failed` (counted and logged as the hook's failure). */
  refuse(ws: PubSubSocket, conn: PubSubConnection, verdict: Exclude<Verdict, { allowed: true }>, id: RequestId, later: boolean): void {
    if (verdict.code === 'hook_failed') return this.hookFailed(ws, conn, verdict.hook, verdict, id);
    if (later) this.writer.failLater(ws, conn, 'forbidden', verdict.message, id);
    else this.writer.fail(ws, 'forbidden', verdict.message, id);
  }

  /**
   * A request in the connection's queue: its access check (hooks included), then its push traps (a
   * publish), then the request. Never throws: a failed hook is an error frame. Resolves once the request
   * is answered, but for a `slow` wait, which runs beside the later requests: then with `later`, the
   * wait's end.
   */
  async handle(ws: PubSubSocket, conn: PubSubConnection, request: ClientAction, asked?: Promise<Verdict>): Promise<{ later: Promise<void> } | void> {
    try {
      if (conn.closed || conn.leaving) return;
      // Parsed once: canPublish and the push traps see the same message.
      let parsed: { value: unknown } | null = null;
      const message = (): unknown => (parsed ??= { value: parsedMessage(request) }).value;
      const verdict = await (asked ?? this.verdict(ws, conn, request, message));
      if (verdict && !verdict.allowed) return this.refuse(ws, conn, verdict, request.id, true);
      // A publish that a hook saw goes on from its parsed message, and the queue waits for the broker.
      if (request.action === 'publish' && (this.access.publishHook || this.ctx.hooks.onPublish?.length)) {
        return await this.publishThroughTraps(ws, conn, request.channel, message(), request.id);
      }
      // A receiver's answer comes before the next request's: the queue waits for it (request order).
      if (request.action === 'rpc') return await this.rpc(ws, conn, request.method, request.params, request.id);
      // An answer that comes later (a history or presence read, a refresh) comes before the next
      // request's too; `slow` requests alone run side by side (docs/protocol.md).
      let answered: Promise<void> | void = undefined;
      this.writer.corkLater(ws, conn, () => (answered = this.target.carryOut(ws, conn, request)));
      if (request.action === 'slow' && answered) return { later: answered };
      await answered;
    } catch (err) {
      this.writer.crashed(ws, conn, 'pubsub hooks', err);
    }
  }

  /** The push traps in order (if any), then the publish (or a drop, acked all the same). */
  private async publishThroughTraps(ws: PubSubSocket, conn: PubSubConnection, channel: ChannelRef, parsed: unknown, id: RequestId): Promise<void> {
    const facade = this.facade(ws, conn);
    let message = parsed;
    for (const trap of this.ctx.hooks.onPublish ?? []) {
      const outcome = await callHook(() => trap(facade, channel.name, message), this.ctx.options.hookTimeout);
      if (!outcome.ok) return this.hookFailed(ws, conn, 'onPublish', outcome, id);
      if (outcome.value === false) {
        // Dropped by a trap: nothing is published, and the publisher is answered as for any publish.
        if (id !== null) this.writer.sendLater(ws, conn, events.published(channel.name, id));
        return;
      }
      message = outcome.value;
    }
    const json = JSON.stringify(message);
    if (json === undefined) return this.hookFailed(ws, conn, 'onPublish', { error: new Error('a push trap returned a value that is not JSON'), timedOut: false }, id);
    await this.target.publishAndAck(ws, conn, channel, json, id);
  }

  /** `rpc`: the receiver's result, `unknown_method`, or `rpc_failed` with what it threw. */
  async rpc(ws: PubSubSocket, conn: PubSubConnection, method: string, params: unknown, id: RequestId): Promise<void> {
    const receivers = this.ctx.hooks.rpc;
    const receiver = receivers && Object.hasOwn(receivers, method) ? receivers[method] : undefined;
    if (!receiver) return this.writer.failLater(ws, conn, 'unknown_method', `no method ${JSON.stringify(method.slice(0, 50))}`, id);
    const outcome = await callHook(() => receiver(this.facade(ws, conn), params), this.ctx.options.hookTimeout);
    if (!outcome.ok) {
      reportHookFailure(this.ctx, 'rpc', outcome);
      const said = outcome.error instanceof ClientError ? outcome.error.message : toldClient('the receiver failed', outcome.error);
      return this.writer.failLater(ws, conn, 'rpc_failed', said, id);
    }
    const json = JSON.stringify(outcome.value ?? null);
    if (json === undefined) return this.writer.failLater(ws, conn, 'rpc_failed', 'the result is not JSON', id);
    this.writer.sendLater(ws, conn, events.result(json, id));
  }

  /** `onOpen`, after the welcome, first in the connection's queue. */
  async onOpen(ws: PubSubSocket, conn: PubSubConnection): Promise<void> {
    if (conn.closed) return;
    const outcome = await callHook(() => this.ctx.hooks.onOpen!(this.facade(ws, conn)), this.ctx.options.hookTimeout);
    if (!outcome.ok) this.hookFailed(ws, conn, 'onOpen', outcome, null);
  }

  /** `onClose`, once the connection has ended; its failure is counted and logged, and nobody is told. */
  onClose(ws: PubSubSocket, conn: PubSubConnection, code: number): void {
    const onClose = this.ctx.hooks.onClose;
    if (!onClose) return;
    const facade = this.facade(ws, conn);
    void callHook(() => onClose(facade, code), this.ctx.options.hookTimeout).then((outcome) => {
      if (!outcome.ok) reportHookFailure(this.ctx, 'onClose', outcome);
    });
  }

  private hookFailed(ws: PubSubSocket, conn: PubSubConnection, hook: HookName, outcome: { error: Error; timedOut: boolean }, id: RequestId): void {
    reportHookFailure(this.ctx, hook, outcome);
    this.writer.failLater(ws, conn, 'hook_failed', toldClient(`the ${hook} hook failed`, outcome.error), id);
  }

  /** What hooks see of a connection (made once per connection, when a hook first needs it). */
  facade(ws: PubSubSocket, conn: PubSubConnection): HookConnection {
    if (conn.facade) return conn.facade;
    const later = (act: () => void): void => this.writer.corkLater(ws, conn, act);
    conn.facade = {
      id: conn.id,
      user: conn.user,
      session: conn.session,
      address: conn.address,
      send: (frame) => {
        const text = JSON.stringify(frame);
        if (text !== undefined) later(() => this.writer.send(ws, text));
      },
      subscribe: (name) => {
        const facility = parseChannel(name);
        if (!facility) throw new RangeError(`bad channel name ${JSON.stringify(name.slice(0, 50))}`);
        later(() => this.target.subscribeTrusted(ws, { name, facility }));
      },
      unsubscribe: (name) => {
        const facility = parseChannel(name);
        if (facility) later(() => this.target.unsubscribe(ws, { name, facility }, null));
      },
      close: () => {
        if (!conn.closed && !conn.leaving) this.writer.goodbye(ws, 'closed', CLOSE.normal);
      },
    };
    return conn.facade;
  }
}

/** A publish's message as its parsed value (undefined for other requests). */
function parsedMessage(request: ClientAction): unknown {
  return request.action === 'publish' ? JSON.parse(request.messageJson) : undefined;
}
