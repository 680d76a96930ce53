/**
 * The upgrade to `/pubsub`: admission (limits, shutdown), then, with a token or an `authenticate` hook,
 * the asynchronous check (other connections go on meanwhile), and the connection's state as uWS keeps
 * it. A refusal is an HTTP status (401/403, or 500 for a failed hook), never an exception: a bad
 * request costs its own connection only.
 */
import { randomBytes } from 'node:crypto';
import type { HttpRequest, HttpResponse, us_socket_context_t } from '../engine.js';
import { callHook, Refusal as HookRefusal, type HookIdentity, type UpgradeRequest } from '../hooks.js';
import { isOwnerName, TokenRefused, type TokenIdentity } from '../identity.js';
import { acceptUpgrade, refuseWithServerError, reportHandlerError, reportHookFailure, upgradeHeaders, type ServerContext, type UpgradeHeaders } from './context.js';
import type { PubSubConnection } from './pubsub-connection.js';
import { originRefusal, refuseUpgrade, requestToken, TOKEN_REQUIRED, tokenRefusal, upgradeLater, type UpgradeRefusal } from './token-gate.js';

const AUTHENTICATE_FAILED: UpgradeRefusal = { why: 'hook_failed', status: '500 Internal Server Error', text: 'the authenticate hook failed' };
const SERVER_FAILED: UpgradeRefusal = { why: 'hook_failed', status: '500 Internal Server Error', text: 'the server failed on this upgrade' };

/**
 * Connection ids: a random prefix per process (4 bytes: the processes of one server are unlikely to
 * share one) and a counter.
 */
const connectionPrefix = randomBytes(4).toString('hex');
let connectionCounter = 0;

export class PubSubUpgrades {
  /**
   * Set while an upgrade runs inside an HttpResponse cork (the asynchronous upgrade after a token
   * check). uWS 20.30 ends a socket (1006, though the client saw the frame) that is sent a frame from
   * `open` then, so the endpoint's welcome waits until the cork has ended.
   */
  inCork = false;

  constructor(private readonly ctx: ServerContext) {}

  /** The uWS `upgrade` handler of `/pubsub`. */
  upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    // The address's slot, from admission until a refusal, the upgrade or the later check takes it over:
    // an exception in between gives it back.
    let admitted: string | null = null;
    try {
      const address = (admitted = this.ctx.admission.admit(res, req, this.ctx.shuttingDown));
      if (address === null) return;
      const found = requestToken(this.ctx, req);
      const token = found?.token ?? null;
      const foreign = originRefusal(this.ctx, req, found?.from ?? null);
      const headers = upgradeHeaders(req);
      // The request is gone after the first await: what authenticate sees is copied now.
      const request = this.ctx.hooks.authenticate && !foreign ? upgradeRequest(req, address) : null;
      admitted = null;
      if (foreign) return this.refuse(res, address, foreign);
      if (token === null && this.ctx.options.requireAuth) return this.refuse(res, address, TOKEN_REQUIRED);
      if (token === null && !this.ctx.hooks.authenticate) return this.accept(res, headers, context, address, null);
      void this.acceptLater(res, headers, context, address, token, request);
    } catch (err) {
      if (admitted !== null) this.ctx.admission.release(admitted);
      reportHandlerError(this.ctx, 'pubsub upgrade', err);
      refuseWithServerError(res);
    }
  }

  /**
   * The asynchronous upgrade: verifies the token and asks `authenticate` (other connections go on
   * meanwhile), then upgrades, or answers 401/403 (a refusal) or 500 (a failed hook).
   */
  private acceptLater(
    res: HttpResponse,
    headers: UpgradeHeaders,
    context: us_socket_context_t,
    address: string,
    token: string | null,
    request: UpgradeRequest | null,
  ): Promise<void> {
    return upgradeLater(this.ctx, res, address, 'pubsub upgrade', async () => {
      let identity: TokenIdentity | null = null;
      try {
        if (token !== null) identity = await this.ctx.verifier!.verify(token);
        if (request) {
          request.token = identity && { user: identity.user, session: identity.session };
          const outcome = await callHook(() => this.ctx.hooks.authenticate!(request), this.ctx.options.hookTimeout);
          if (!outcome.ok && outcome.error instanceof HookRefusal) {
            return { status: outcome.error.status === 403 ? '403 Forbidden' : '401 Unauthorized', why: 'unauthorized', text: outcome.error.message };
          }
          const named = outcome.ok ? hookIdentity(outcome.value, identity) : outcome;
          if ('error' in named) {
            reportHookFailure(this.ctx, 'authenticate', named);
            return AUTHENTICATE_FAILED;
          }
          identity = named.identity;
        }
      } catch (err) {
        if (err instanceof TokenRefused) return tokenRefusal(err);
        reportHandlerError(this.ctx, 'pubsub upgrade', err);
        return SERVER_FAILED;
      }
      if (identity === null && this.ctx.options.requireAuth) return TOKEN_REQUIRED;
      return () => {
        this.inCork = true;
        try {
          this.accept(res, headers, context, address, identity);
        } finally {
          this.inCork = false;
        }
      };
    });
  }

  private refuse(res: HttpResponse, address: string, refusal: UpgradeRefusal): void {
    refuseUpgrade(this.ctx, res, address, refusal);
  }

  private accept(res: HttpResponse, headers: UpgradeHeaders, context: us_socket_context_t, address: string, identity: TokenIdentity | null): void {
    const connection: PubSubConnection = {
      id: connectionPrefix + (++connectionCounter).toString(36),
      user: identity?.user ?? null,
      session: identity?.session ?? randomBytes(12).toString('base64url'),
      grants: identity && { channels: identity.channels, publish: identity.publish },
      expiresAt: identity?.expiresAt ?? null,
      channels: null,
      closed: false,
      leaving: false,
      cut: false,
      endedByServer: false,
      windowStart: 0,
      windowCount: 0,
      address,
      queue: null,
      pending: 0,
      pendingBytes: 0,
      facade: null,
    };
    acceptUpgrade(res, headers, context, connection);
  }
}

/** What `authenticate` sees of an upgrade request, copied while the request is valid. */
function upgradeRequest(req: HttpRequest, address: string): UpgradeRequest {
  const headers: Record<string, string> = {};
  req.forEach((name, value) => (headers[name] = value));
  const query = req.getQuery();
  return { url: query ? `${req.getUrl()}?${query}` : req.getUrl(), headers, address, token: null };
}

/**
 * The identity `authenticate` returned, over the token's (whose expiry and grants it keeps), or the
 * failure a malformed one is; null: anonymous.
 */
function hookIdentity(value: HookIdentity, token: TokenIdentity | null): { identity: TokenIdentity | null } | { error: Error; timedOut: false } {
  if (value === null) return { identity: null };
  const valid = typeof value === 'object' && isOwnerName(value.user) && (value.session === undefined || isOwnerName(value.session));
  if (!valid) return { error: new Error('authenticate returned neither null nor { user, session? } with names of A-Z a-z 0-9 _ - . @'), timedOut: false };
  return { identity: { user: value.user, session: value.session ?? null, expiresAt: token?.expiresAt ?? null, channels: token?.channels ?? [], publish: token?.publish ?? [] } };
}
