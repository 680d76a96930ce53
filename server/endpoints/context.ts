/** What every endpoint of one server shares. */
import type { History } from '../history/types.js';
import type { Keeper } from '../hub/fanout.js';
import type { PresenceStore } from '../presence/types.js';
import type { Broker } from '../broker/index.js';
import { BEARER_PROTOCOL_PREFIX } from '../identity.js';
import type { HttpRequest, HttpResponse, TemplatedApp, us_socket_context_t, Uws, WebSocket } from '../engine.js';
import type { ServerOptions } from '../options.js';
import type { SlowIo } from '../slow-io/index.js';
import type { Stats } from '../stats.js';
import type { Admission } from './admission.js';
import type { HookName, Hooks } from '../hooks.js';
import type { TokenVerifier } from '../identity.js';
import type { Logger, Throttle } from '../log.js';

export interface ServerContext {
  readonly uws: Uws;
  readonly app: TemplatedApp;
  readonly options: ServerOptions;
  readonly stats: Stats;
  readonly broker: Broker;
  /** The `slow` action's backend; null when it is off. */
  readonly slowIo: SlowIo | null;
  /** The upgrade checks both WebSocket endpoints share (connection limits count both). */
  readonly admission: Admission;
  /** Set when shutdown starts: upgrades are refused from then on. */
  shuttingDown: boolean;
  /** The server's log: events only, never a line per frame. */
  readonly log: Logger;
  /** Keeps events that come in floods (refusals, handler errors, slow consumers) to a line per 10 s each. */
  readonly throttle: Throttle;
  /** The application's hooks (server/hooks.ts); `{}` without any. */
  readonly hooks: Hooks;
  /** Who is subscribed where (server/presence/); null unless `presence` is on. */
  readonly presence: PresenceStore | null;
  /** The kept messages of each channel (server/history/), for reading; null unless `history` is on. */
  readonly history: History | null;
  /** With history in this process (no Redis): where the hub keeps each message as it goes out. */
  readonly keeper: Keeper | null;
  /** Verifies the tokens of both WebSocket endpoints (one key import per server); null without `jwtSecret`. */
  readonly verifier: TokenVerifier | null;
}

/** WebSocket close codes the server uses. */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  policy: 1008,
  tooBig: 1009,
  serverError: 1011,
} as const;

/** uWS `send` results. */
export const SEND = { backpressure: 0, success: 1, dropped: 2 } as const;

/** The handshake headers of an upgrade request, read while the request is still valid (before any await). */
export interface UpgradeHeaders {
  key: string;
  protocol: string;
  extensions: string;
}

/**
 * The handshake headers the answer needs. Of the subprotocols offered the first that carries no token
 * is chosen (RFC 6455 4.2.2: one of those offered), never a `bearer.<jwt>` item: the token goes no
 * further than the request.
 */
export function upgradeHeaders(req: HttpRequest): UpgradeHeaders {
  const offered = req.getHeader('sec-websocket-protocol').split(',').map((item) => item.trim());
  const protocol = offered.find((item) => item !== '' && !item.startsWith(BEARER_PROTOCOL_PREFIX)) ?? '';
  return { key: req.getHeader('sec-websocket-key'), protocol, extensions: req.getHeader('sec-websocket-extensions') };
}

/**
 * Completes a WebSocket upgrade with `userData`, with the handshake headers read from the request.
 * uWS copies the properties of what it is given onto its socket object, where V8 keeps them in
 * dictionary mode (a hash table: 853 B a connection for the 17 fields of ours); so it is given one
 * property holding `userData`, which stays a compact object of its own ({@link userDataOf}).
 */
export function acceptUpgrade<T>(res: HttpResponse, headers: UpgradeHeaders, context: us_socket_context_t, userData: T): void {
  res.upgrade({ state: userData } satisfies Held<T>, headers.key, headers.protocol, headers.extensions, context);
}

/** What {@link acceptUpgrade} gives uWS. */
interface Held<T> {
  readonly state: T;
}

/** A socket's user data, as {@link acceptUpgrade} stored it. */
export function userDataOf<T>(ws: WebSocket<T>): T {
  return (ws.getUserData() as unknown as Held<T>).state;
}

/**
 * Reports an exception that escaped a handler: counted in `/stats` (`handler_errors`) and logged with
 * its stack, at most once per 10 s for each place, so a client that triggers one on purpose cannot
 * flood the log. The caller ends only what the exception concerned (one connection, one request).
 */
export function reportHandlerError(ctx: Pick<ServerContext, 'stats' | 'log' | 'throttle'>, where: string, err: unknown): void {
  const count = ++ctx.stats.handlerErrors;
  ctx.throttle.pass(`handler:${where}`, (suppressed) => ctx.log.error({ err, where, count, suppressed }, 'handler error: the connection or request it concerned was ended'));
}

/**
 * Counts and logs a failed hook call (a line per hook per 10 s at most): the caller answers the one
 * connection or upgrade it concerned (hook_failed, or 500).
 */
export function reportHookFailure(ctx: Pick<ServerContext, 'stats' | 'log' | 'throttle'>, hook: HookName, outcome: { error: Error; timedOut: boolean }): void {
  const count = ++ctx.stats.hookErrors[hook];
  if (outcome.timedOut) ctx.stats.hookTimeouts++;
  ctx.throttle.pass(`hook:${hook}`, (suppressed) =>
    ctx.log.warn({ hook, err: outcome.error, timed_out: outcome.timedOut, count, suppressed }, `the ${hook} hook failed: its connection got hook_failed`),
  );
}

/** The last guard's answer to an upgrade whose handler threw: 500, unless an answer already went out. */
export function refuseWithServerError(res: HttpResponse): void {
  try {
    res.writeStatus('500 Internal Server Error').end('internal error', true);
  } catch {
    // Answered (or aborted) already: uWS throws on a finished response.
  }
}
