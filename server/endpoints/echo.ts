/**
 * The `/echo` WebSocket endpoint: the C10k sequence. Welcome, then each frame echoed unchanged
 * `rounds` times (`/echo?rounds=N`, default 3, 0 = until the client closes), then goodbye and 1000.
 */
import type { HttpRequest, HttpResponse, us_socket_context_t, WebSocket, WebSocketBehavior } from '../engine.js';
import { events, type GoodbyeReason } from '../protocol/index.js';
import { TokenRefused } from '../identity.js';
import { countClientClose } from '../stats.js';
import { originRefusal, refuseUpgrade, requestToken, TOKEN_REQUIRED, tokenRefusal, upgradeLater } from './token-gate.js';
import { acceptUpgrade, upgradeHeaders, CLOSE, refuseWithServerError, reportHandlerError, userDataOf, type ServerContext } from './context.js';
import { OpenSockets } from './open-sockets.js';

/** Per-connection state: echoes still to send (Infinity for rounds=0), and the source address. */
export interface EchoConnection {
  remaining: number;
  readonly address: string;
  /** Set when the server ends the connection (its close is then not the client's). */
  endedByServer: boolean;
}

type Socket = WebSocket<EchoConnection>;

/** Rounds when the URL names none. */
export const DEFAULT_ROUNDS = 3;
const MAX_ROUNDS = 1_000_000_000;

/**
 * Reads `rounds` from a query value: undefined or empty means the default; anything but a whole number
 * from 0 to 1e9 is an error message.
 */
export function parseRounds(value: string | undefined): number | string {
  if (value === undefined || value === '') return DEFAULT_ROUNDS;
  if (!/^\d{1,10}$/.test(value) || Number(value) > MAX_ROUNDS) {
    return `rounds must be a whole number from 0 to ${MAX_ROUNDS} (got ${JSON.stringify(value.slice(0, 20))})`;
  }
  return Number(value);
}

export class EchoEndpoint {
  /** Every open `/echo` socket (for shutdown). */
  readonly sockets = new OpenSockets<EchoConnection>((ws, reason) => this.goodbye(ws, reason));

  /** Set while an upgrade runs inside an HttpResponse cork: the welcome then waits (as in pubsub.ts). */
  private upgradingInCork = false;
  constructor(private readonly ctx: ServerContext) {}

  /** The uWS behaviour of `/echo`. */
  behavior(): WebSocketBehavior<EchoConnection> {
    const { options, uws } = this.ctx;
    return {
      compression: uws.DISABLED,
      maxPayloadLength: options.maxPayload,
      maxBackpressure: options.maxBackpressure,
      idleTimeout: options.idleTimeout,
      sendPingsAutomatically: options.idleTimeout > 0,
      upgrade: (res, req, context) => this.upgrade(res, req, context),
      open: (ws) => this.open(ws),
      message: (ws, data, isBinary) => this.message(ws, data, isBinary),
      close: (ws, code, reason) => this.close(ws, code, reason),
    };
  }

  private upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    // The address's slot, until a refusal, the upgrade or the later check takes it over (see PubSubUpgrade).
    let admitted: string | null = null;
    try {
      const rounds = parseRounds(req.getQuery('rounds'));
      if (typeof rounds === 'string') {
        res.writeStatus('400 Bad Request').end(rounds, true);
        return;
      }
      const address = (admitted = this.ctx.admission.admit(res, req, this.ctx.shuttingDown));
      if (address === null) return;
      const headers = upgradeHeaders(req);
      const data: EchoConnection = { remaining: rounds === 0 ? Infinity : rounds, address, endedByServer: false };
      // Identity applies to every WebSocket endpoint: a token brought here is checked too.
      const found = requestToken(this.ctx, req);
      const token = found?.token ?? null;
      const foreign = originRefusal(this.ctx, req, found?.from ?? null);
      admitted = null;
      if (foreign) return refuseUpgrade(this.ctx, res, address, foreign);
      if (token === null && this.ctx.options.requireAuth) return refuseUpgrade(this.ctx, res, address, TOKEN_REQUIRED);
      if (token === null) return acceptUpgrade(res, headers, context, data);
      // The echo sequence has no use for who the client is: the token is checked, not kept.
      const verifier = this.ctx.verifier!;
      void upgradeLater(this.ctx, res, address, 'echo upgrade', async () => {
        try {
          await verifier.verify(token);
        } catch (err) {
          if (err instanceof TokenRefused) return tokenRefusal(err);
          throw err;
        }
        return () => {
          this.upgradingInCork = true;
          try {
            acceptUpgrade(res, headers, context, data);
          } finally {
            this.upgradingInCork = false;
          }
        };
      });
    } catch (err) {
      if (admitted !== null) this.ctx.admission.release(admitted);
      reportHandlerError(this.ctx, 'echo upgrade', err);
      refuseWithServerError(res);
    }
  }

  private open(ws: Socket): void {
    this.sockets.add(ws);
    this.ctx.stats.echoConnections++;
    this.ctx.stats.connectionsTotal++;
    // uWS 20.30 ends a socket sent a frame from `open` inside an HttpResponse cork (see pubsub.ts).
    if (this.upgradingInCork) queueMicrotask(() => this.sockets.has(ws) && ws.cork(() => this.welcome(ws)));
    else this.welcome(ws);
  }

  private welcome(ws: Socket): void {
    ws.send(events.ECHO_WELCOME, false);
    this.ctx.stats.messagesOut++;
  }

  /** Echoing cannot throw but for a bug; the guard keeps such a bug to one connection (1011). */
  private message(ws: Socket, data: ArrayBuffer, isBinary: boolean): void {
    try {
      this.echo(ws, data, isBinary);
    } catch (err) {
      reportHandlerError(this.ctx, 'echo message', err);
      userDataOf(ws).endedByServer = true;
      ws.cork(() => {
        ws.send(events.goodbye('server_error'), false);
        ws.end(CLOSE.serverError, 'server_error');
      });
    }
  }

  private echo(ws: Socket, data: ArrayBuffer, isBinary: boolean): void {
    const conn = userDataOf(ws);
    const stats = this.ctx.stats;
    stats.messagesIn++;
    if (conn.remaining === 0) return;
    ws.send(data, isBinary);
    stats.messagesOut++;
    if (--conn.remaining === 0) {
      ws.send(events.ECHO_GOODBYE, false);
      stats.messagesOut++;
      conn.endedByServer = true;
      ws.end(CLOSE.normal);
    }
  }

  private close(ws: Socket, code: number, reason: ArrayBuffer): void {
    this.sockets.delete(ws);
    this.ctx.stats.echoConnections--;
    const conn = userDataOf(ws);
    this.ctx.admission.release(conn.address);
    if (!conn.endedByServer) countClientClose(this.ctx.stats, code, reason);
  }

  /** Shutdown (through {@link OpenSockets.goodbyeAll}): `goodbye` to one socket, which echoes nothing more. */
  private goodbye(ws: Socket, reason: GoodbyeReason): void {
    const conn = userDataOf(ws);
    if (conn.remaining === 0) return;
    conn.remaining = 0;
    ws.send(events.goodbye(reason), false);
  }
}
