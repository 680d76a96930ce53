/**
 * The token check at an upgrade, for the endpoints that take tokens (`/pubsub`, `/echo`): a token
 * from the query, the Authorization header or the cookie is verified asynchronously (other
 * connections go on meanwhile); a bad one is refused with 401, and `--require-auth` refuses none.
 */
import type { HttpRequest, HttpResponse } from '../engine.js';
import { tokenSource, type TokenPlace, type TokenRefused } from '../identity.js';
import { originAllowed } from '../origins.js';
import type { Refusal } from '../refusals.js';
import { refuseWithServerError, reportHandlerError, type ServerContext } from './context.js';

/** A refusal of an upgrade that passed admission: the reason counted, the status line, the body. */
export interface UpgradeRefusal {
  why: Refusal;
  status: string;
  text: string;
}

export const TOKEN_REQUIRED: UpgradeRefusal = { why: 'unauthorized', status: '401 Unauthorized', text: 'a token is required (--require-auth)' };
export const SHUTTING_DOWN: UpgradeRefusal = { why: 'shutting_down', status: '503 Service Unavailable', text: 'shutting down' };
export const ORIGIN_REFUSED: UpgradeRefusal = { why: 'origin', status: '403 Forbidden', text: 'a page of this origin may not open a WebSocket here (--allowed-origins)' };

/** The token an upgrade request brings, and where it was; null without one, or when tokens are off (no `jwtSecret`). */
export function requestToken(ctx: ServerContext, req: HttpRequest): { token: string; from: TokenPlace } | null {
  return ctx.verifier ? tokenSource(req.getQuery() ?? '', req.getHeader('authorization'), req.getHeader('cookie'), req.getHeader('sec-websocket-protocol')) : null;
}

/**
 * The refusal of an upgrade from a page whose origin may not open a WebSocket here (origins.ts): one
 * whose token came from the cookie, or any with an `Origin` once `--allowed-origins` lists some; null
 * when it may.
 */
export function originRefusal(ctx: ServerContext, req: HttpRequest, from: TokenPlace | null): UpgradeRefusal | null {
  const origin = req.getHeader('origin');
  const allowed = ctx.options.allowedOrigins;
  if (origin === '' || (from !== 'cookie' && allowed.length === 0)) return null;
  return originAllowed(origin, req.getHeader('host'), allowed) ? null : ORIGIN_REFUSED;
}

export function refuseUpgrade(ctx: ServerContext, res: HttpResponse, address: string, refusal: UpgradeRefusal): void {
  ctx.admission.refuseAdmitted(res, address, refusal.why, refusal.status, refusal.text);
}

/** What an asynchronous upgrade check decided: a refusal, or the upgrade to run (corked). */
export type UpgradeDecision = UpgradeRefusal | (() => void);

/**
 * An upgrade decided asynchronously (a token to verify, a hook to ask), while other connections go
 * on. `decide` returns a refusal or the upgrade to run; it runs corked, unless the client went away
 * meanwhile (its admission is then given back) or shutdown began (503). An exception that escapes
 * `decide` or the upgrade (a bug) gets a 500, counted in handler_errors.
 */
export async function upgradeLater(ctx: ServerContext, res: HttpResponse, address: string, where: string, decide: () => Promise<UpgradeDecision>): Promise<void> {
  let aborted = false;
  res.onAborted(() => (aborted = true));
  let decision: UpgradeDecision | null = null;
  try {
    decision = await decide();
  } catch (err) {
    reportHandlerError(ctx, where, err);
  }
  if (aborted) return ctx.admission.release(address);
  res.cork(() => {
    try {
      if (decision === null) throw new Error('the upgrade check failed');
      if (typeof decision !== 'function') return refuseUpgrade(ctx, res, address, decision);
      if (ctx.shuttingDown) return refuseUpgrade(ctx, res, address, SHUTTING_DOWN);
      decision();
    } catch (err) {
      if (decision !== null) reportHandlerError(ctx, where, err);
      ctx.admission.release(address);
      refuseWithServerError(res);
    }
  });
}

/** The refusal of a token that does not verify. */
export function tokenRefusal(err: TokenRefused): UpgradeRefusal {
  return { why: 'unauthorized', status: '401 Unauthorized', text: err.message };
}
