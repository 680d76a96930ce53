/**
 * One `/pubsub` connection: its state, kept by uWS as the socket's user data, and the only ways the
 * server writes to it (send, fail, goodbye, close), each counted where `/stats` counts it.
 *
 * Inside a uWS handler a write goes out at once; from outside one (after an await) it must be corked,
 * and the socket may have closed meanwhile: a closed uWS socket throws on any access, so the `Later`
 * forms take the state read before the await and write nothing to a socket that closed or said
 * goodbye.
 */
import type { Accessor } from '../access.js';
import type { WebSocket } from '../engine.js';
import type { HookConnection } from '../hooks.js';
import type { SlowConsumerSweep } from '../hub/backpressure.js';
import { events, type ErrorCode, type GoodbyeReason, type RequestId } from '../protocol/index.js';
import { CLOSE, reportHandlerError, SEND, userDataOf, type ServerContext } from './context.js';

/** Per-connection state, kept by uWS as the socket's user data. */
export interface PubSubConnection extends Accessor {
  readonly id: string;
  readonly user: string | null;
  readonly session: string;
  /** What the connection's token grants beyond the built-in rules (`channels`, `publish`); null without a token. */
  grants: Accessor['grants'];
  /** When its token expires (ms since the epoch); null without a token or without `exp`. */
  expiresAt: number | null;
  /** Channels subscribed; null until the first subscribe, to keep idle connections small. */
  channels: Set<string> | null;
  /** Set by the close handler; the socket must not be touched afterwards. */
  closed: boolean;
  /** Set once shutdown said goodbye, or the connection was cut: nothing more is sent, and frames from the client are ignored. */
  leaving: boolean;
  /** Set when it was cut as a slow consumer: its goodbye is queued, and its end waits until it has read it (pubsub.ts). */
  cut: boolean;
  /** Set when the server ends the connection (its close is then not the client's). */
  endedByServer: boolean;
  /** Rate limit: start (ms) and frame count of the current one-second window. */
  windowStart: number;
  windowCount: number;
  /** Source address, for the per-address limit. */
  readonly address: string;
  /**
   * The end of this connection's last queued request (pubsub-hooks.ts), so that requests run one after
   * another in the order sent while one awaits (other connections go on); null while nothing waits.
   */
  queue: Promise<void> | null;
  /**
   * Its requests taken and not yet answered (queued behind a hook, waiting for Redis, a `slow` wait), and
   * their frames' bytes: bounded by `--max-pending-requests` and `--max-pending-bytes` (pubsub.ts).
   */
  pending: number;
  pendingBytes: number;
  /** What hooks see of it; made on first use. */
  facade: HookConnection | null;
}

export type PubSubSocket = WebSocket<PubSubConnection>;

/** uWS reads frames up to this many times the payload limit and the server refuses them with 1009; larger
 * ones uWS cuts off at once (1006), so no client can make the server buffer more. */
export const PAYLOAD_READ_FACTOR = 4;

/** The ways to write to a connection, shared by every connection of the endpoint. */
export class ConnectionWriter {
  constructor(
    private readonly ctx: ServerContext,
    private readonly sweep: SlowConsumerSweep<PubSubSocket>,
  ) {}

  /**
   * Sends from inside a uWS handler or a cork. A reply counts toward the limit like a published
   * message: a client that sends requests but reads no replies is a slow consumer too.
   */
  send(ws: PubSubSocket, text: string): void {
    const result = ws.send(text, false);
    this.ctx.stats.messagesOut++;
    if (result === SEND.success) return;
    if (result === SEND.dropped) this.ctx.stats.dropped++; // uWS has no cap here (hub/backpressure.ts): never expected
    this.sweep.check(ws);
  }

  /** An error frame, counted by code. */
  fail(ws: PubSubSocket, code: ErrorCode, text: string, id: RequestId): void {
    this.ctx.stats.errors[code]++;
    this.send(ws, events.error(code, text, id));
  }

  /** {@link send} from outside a uWS handler. */
  sendLater(ws: PubSubSocket, conn: PubSubConnection, text: string): void {
    this.corkLater(ws, conn, () => this.send(ws, text));
  }

  /** {@link fail} from outside a uWS handler. */
  failLater(ws: PubSubSocket, conn: PubSubConnection, code: ErrorCode, text: string, id: RequestId): void {
    this.corkLater(ws, conn, () => this.fail(ws, code, text, id));
  }

  /** Runs `act` corked, from outside a uWS handler, unless the socket has closed or said goodbye meanwhile. */
  corkLater(ws: PubSubSocket, conn: PubSubConnection, act: () => void): void {
    if (!conn.closed && !conn.leaving) ws.cork(act);
  }

  /** `goodbye` with `reason` as the last frame, then the close with `code`. */
  goodbye(ws: PubSubSocket, reason: GoodbyeReason, code: number): void {
    const conn = userDataOf(ws);
    if (conn.closed || conn.cut) return;
    conn.endedByServer = true;
    ws.cork(() => {
      ws.send(events.goodbye(reason));
      ws.end(code, reason);
    });
  }

  /** A connection found past `--max-backpressure`: counted and logged (throttled); the endpoint cuts it. */
  countSlowConsumer(ws: PubSubSocket): void {
    const count = ++this.ctx.stats.slowConsumers;
    const conn = userDataOf(ws);
    const buffered = ws.getBufferedAmount();
    this.ctx.throttle.pass('slow_consumer', (suppressed) =>
      this.ctx.log.warn({ connection: conn.id, address: conn.address, buffered, limit: this.ctx.options.maxBackpressure, count, suppressed }, 'slow consumer cut (goodbye, then 1008 once it has read it)'),
    );
  }

  /** A frame over `--max-payload`: counted, closed with 1009. */
  closeTooBig(ws: PubSubSocket): void {
    this.ctx.stats.tooLarge++;
    userDataOf(ws).endedByServer = true;
    ws.end(CLOSE.tooBig, `frame over ${this.ctx.options.maxPayload} bytes`);
  }

  /**
   * The last guard's answer to an exception that escaped a handler: goodbye `server_error` and 1011
   * for this connection only, counted; every other connection goes on.
   */
  crashed(ws: PubSubSocket, conn: PubSubConnection, where: string, err: unknown): void {
    reportHandlerError(this.ctx, where, err);
    if (conn.closed) return;
    try {
      this.goodbye(ws, 'server_error', CLOSE.serverError);
    } catch {
      // The socket is unusable: uWS ends it by its own timeouts.
    }
  }
}
