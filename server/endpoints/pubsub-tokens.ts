/**
 * A `/pubsub` connection's token over its life: `refresh` puts a new token of the same user in place of
 * the old one (its expiry and grants) before the old one runs out, and the connection leaves the
 * channels only the old grants allowed; a connection whose token has run out gets goodbye
 * `token_expired` and 1008 (looked for once a second).
 */
import { TokenRefused, type TokenIdentity } from '../identity.js';
import { events, type RequestId } from '../protocol/index.js';
import { CLOSE, reportHandlerError, userDataOf, type ServerContext } from './context.js';
import type { ConnectionWriter, PubSubConnection, PubSubSocket } from './pubsub-connection.js';

export class TokenLife {
  /** The sockets whose token expires. */
  private readonly expiring = new Set<PubSubSocket>();

  /** `regranted`: the grants changed from `old`; the endpoint leaves what they no longer allow. */
  constructor(
    private readonly ctx: ServerContext,
    private readonly writer: ConnectionWriter,
    private readonly regranted: (ws: PubSubSocket, conn: PubSubConnection, old: PubSubConnection['grants']) => void,
  ) {}

  /** A connection opened (or its token changed): watched while its token has an expiry. */
  watch(ws: PubSubSocket, conn: PubSubConnection): void {
    if (conn.expiresAt === null) this.expiring.delete(ws);
    else this.expiring.add(ws);
  }

  /** A connection closed. */
  forget(ws: PubSubSocket): void {
    this.expiring.delete(ws);
  }

  /**
   * `refresh`: a new token for the same user replaces the old one (its expiry and grants). A bad token,
   * another user's, or tokens being off: error `forbidden`, and the connection goes on under the token
   * it had.
   */
  async refresh(ws: PubSubSocket, conn: PubSubConnection, token: string, id: RequestId): Promise<void> {
    const refuse = (why: string): void => this.writer.failLater(ws, conn, 'forbidden', why, id);
    const verifier = this.ctx.verifier;
    if (!verifier) return refuse('tokens are off on this server (no --jwt-secret)');
    if (conn.user === null) return refuse('an anonymous connection has no token to refresh: connect with one');
    let identity: TokenIdentity;
    try {
      identity = await verifier.verify(token);
    } catch (err) {
      if (err instanceof TokenRefused) return refuse(err.message);
      return this.writer.crashed(ws, conn, 'pubsub refresh', err);
    }
    if (conn.closed || conn.leaving) return;
    if (identity.user !== conn.user) return refuse(`the token is for another user (${identity.user}, not ${conn.user})`);
    const old = conn.grants;
    conn.grants = { channels: identity.channels, publish: identity.publish };
    conn.expiresAt = identity.expiresAt;
    this.watch(ws, conn);
    this.writer.corkLater(ws, conn, () => {
      this.regranted(ws, conn, old);
      this.writer.send(ws, events.refreshed(id));
    });
  }

  /** Says goodbye (`token_expired`, 1008) to every connection whose token has run out by `now`. */
  expire(now: number): void {
    for (const ws of this.expiring) {
      const conn = userDataOf(ws);
      if (conn.expiresAt === null || conn.expiresAt > now || conn.closed || conn.leaving) continue;
      this.expiring.delete(ws);
      try {
        this.writer.goodbye(ws, 'token_expired', CLOSE.policy);
      } catch (err) {
        reportHandlerError(this.ctx, 'pubsub token expiry', err);
      }
    }
  }
}
