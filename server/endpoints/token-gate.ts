/**
 * The token check at an upgrade, for the endpoints that take tokens (`/pubsub`, `/echo`): a token
 * from the query, the Authorization header or the cookie is verified asynchronously (other
 * connections go on meanwhile); a bad one is refused with 401, and `--require-auth` refuses none.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { TokenRefused, type TokenIdentity, type TokenVerifier } from '../identity.js';
import type { Refusal } from './admission.js';
import { refuseWithServerError, reportHandlerError, type ServerContext } from './context.js';

/** A refusal of an upgrade that passed admission: the reason counted, the status line, the body. */
export interface UpgradeRefusal {
  why: Refusal;
  status: string;
  text: string;
}

export const TOKEN_REQUIRED: UpgradeRefusal = { why: 'unauthorized', status: '401 Unauthorized', text: 'a token is required (--require-auth)' };
export const SHUTTING_DOWN: UpgradeRefusal = { why: 'shutting_down', status: '503 Service Unavailable', text: 'shutting down' };

export function refuseUpgrade(ctx: ServerContext, res: HttpResponse, address: string, refusal: UpgradeRefusal): void {
  ctx.admission.refuseAdmitted(res, address, refusal.why, refusal.status, refusal.text);
}

/**
 * Verifies `token`, then, corked, calls `accept` with its identity, or refuses (401 for a bad token,
 * 503 once shutdown began). An upgrade whose client went away meanwhile only gives back its admission.
 */
export async function verifyThenAccept(
  ctx: ServerContext,
  verifier: TokenVerifier,
  res: HttpResponse,
  address: string,
  token: string,
  accept: (identity: TokenIdentity) => void,
  where: string,
): Promise<void> {
  let aborted = false;
  res.onAborted(() => (aborted = true));
  let identity: TokenIdentity | null = null;
  let refusal: UpgradeRefusal | null = null;
  try {
    identity = await verifier.verify(token);
  } catch (err) {
    if (!(err instanceof TokenRefused)) reportHandlerError(ctx, where, err);
    refusal = err instanceof TokenRefused ? { why: 'unauthorized', status: '401 Unauthorized', text: err.message } : { why: 'handshake', status: '500 Internal Server Error', text: 'the server failed on this upgrade' };
  }
  if (aborted) return ctx.admission.release(address);
  res.cork(() => {
    try {
      if (refusal) return refuseUpgrade(ctx, res, address, refusal);
      if (ctx.shuttingDown) return refuseUpgrade(ctx, res, address, SHUTTING_DOWN);
      accept(identity!);
    } catch (err) {
      reportHandlerError(ctx, where, err);
      refuseWithServerError(res);
    }
  });
}
