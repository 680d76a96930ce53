/**
 * The token check at an upgrade, for the endpoints that take tokens (`/pubsub`, `/echo`): a token
 * from the query, the Authorization header or the cookie is verified asynchronously (other
 * connections go on meanwhile); a bad one is refused with 401, and `--require-auth` refuses none.
 */
import type { HttpRequest, HttpResponse } from '../engine.js';
import { tokenOf, type TokenRefused } from '../identity.js';
import type { Refusal } from './refusals.js';
import { refuseWithServerError, reportHandlerError, type ServerContext } from './context.js';

/** A refusal of an upgrade that passed admission: the reason counted, the status line, the body. */
export interface UpgradeRefusal {
  why: Refusal;
  status: string;
  text: string;
}

export const TOKEN_REQUIRED: UpgradeRefusal = { why: 'unauthorized', status: '401 Unauthorized', text: 'a token is required (--require-auth)' };
export const SHUTTING_DOWN: UpgradeRefusal = { why: 'shutting_down', status: '503 Service Unavailable', text: 'shutting down' };

/** The token an upgrade request brings; null without one, or when tokens are off (no `jwtSecret`). */
export function requestToken(ctx: ServerContext, req: HttpRequest): string | null {
  return ctx.verifier ? tokenOf(req.getQuery() ?? '', req.getHeader('authorization'), req.getHeader('cookie')) : null;
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
