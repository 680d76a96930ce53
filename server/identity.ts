/**
 * Signed identity: HS256 JWTs verified with jose. A token names the user (`sub`), may name the session
 * (`sid`), may expire (`exp`), and may grant channels beyond the built-in rules (`channels` to
 * subscribe, `publish` to publish: names, or prefixes ending in `*`). Nothing here touches a socket.
 */
import { createSecretKey, type KeyObject } from 'node:crypto';
import { errors, jwtVerify } from 'jose';

/** What a valid token says. */
export interface TokenIdentity {
  user: string;
  /** The token's `sid`, or null: the server then makes a fresh session. */
  session: string | null;
  /** When the token stops being valid (ms since the epoch), or null when it has no `exp`. */
  expiresAt: number | null;
  /** Channels (names or `prefix*`) it may subscribe to besides what the rules allow. */
  channels: string[];
  /** Channels (names or `prefix*`) it may publish on besides what the rules allow. */
  publish: string[];
}

/** What a token must say besides its signature (`--jwt-audience`, `--jwt-issuer`), and the clock skew allowed. */
export interface TokenChecks {
  audience: string | null;
  issuer: string | null;
  clockToleranceS: number;
}

/** A token that cannot be taken; `message` is the one-line reason the 401 (or the error frame) gives. */
export class TokenRefused extends Error {}

/** The shortest HS256 secret taken: RFC 7518 3.2 asks for a key at least as long as the hash (256 bits). */
export const MIN_SECRET_BYTES = 32;

/** Longest token read, in characters: far above any real one, and a bound on the work one upgrade costs. */
const MAX_TOKEN_LENGTH = 8192;

export class TokenVerifier {
  /**
   * The secret made once into a node:crypto key: jose's Node build then verifies with createHmac.
   * (jose 6 verifies with WebCrypto only, whose HMAC costs Node 20 about 100 µs of main-thread time
   * per call: 18,000 verifications/s against 75,000 for jose 5 with this key, on the same boot.)
   */
  private readonly key: KeyObject;

  /**
   * `checks`: the `aud` and `iss` a token must name (null: not checked), and the seconds of clock skew
   * allowed on `exp` and `nbf` (also while connected: the connection ends that much after `exp`).
   */
  constructor(
    secret: string,
    private readonly checks: TokenChecks = { audience: null, issuer: null, clockToleranceS: 0 },
  ) {
    this.key = createSecretKey(Buffer.from(secret, 'utf8'));
  }

  /** Verifies a token; resolves with what it says, or rejects with a {@link TokenRefused}. */
  async verify(token: string): Promise<TokenIdentity> {
    if (token.length > MAX_TOKEN_LENGTH) throw new TokenRefused(`token longer than ${MAX_TOKEN_LENGTH} characters`);
    let payload: Record<string, unknown>;
    try {
      const { audience, issuer, clockToleranceS } = this.checks;
      ({ payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'], audience: audience ?? undefined, issuer: issuer ?? undefined, clockTolerance: clockToleranceS }));
    } catch (err) {
      throw new TokenRefused(refusal(err));
    }
    const { sub, sid, exp } = payload;
    if (typeof sub !== 'string' || !OWNER.test(sub)) throw new TokenRefused('token has no valid sub (1 to 100 of A-Z a-z 0-9 _ - . @)');
    if (sid !== undefined && (typeof sid !== 'string' || !OWNER.test(sid))) throw new TokenRefused('token sid must be 1 to 100 of A-Z a-z 0-9 _ - . @');
    return {
      user: sub,
      session: (sid as string | undefined) ?? null,
      expiresAt: typeof exp === 'number' ? (exp + this.checks.clockToleranceS) * 1000 : null,
      channels: patterns(payload.channels, 'channels'),
      publish: patterns(payload.publish, 'publish'),
    };
  }
}

/** A user or session name: it becomes part of `user:<name>:...` channels, so no `:` in it. */
const OWNER = /^[A-Za-z0-9_.@-]{1,100}$/;

/** Whether `value` may name a user or a session (1 to 100 of A-Z a-z 0-9 _ - . @). */
export function isOwnerName(value: unknown): value is string {
  return typeof value === 'string' && OWNER.test(value);
}

function patterns(value: unknown, claim: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > 1000 || !value.every((v) => typeof v === 'string' && v.length > 0 && v.length <= 201)) {
    throw new TokenRefused(`token ${claim} must be a list of channel names or prefix* patterns`);
  }
  return value as string[];
}

function refusal(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'token expired';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'token signature does not match';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'token must be signed with HS256';
  if (err instanceof errors.JWTClaimValidationFailed) return `token claim ${err.claim} is not valid: ${err.reason}`;
  return 'token is malformed';
}

/** Whether `channel` is one of `patterns`: a name, or a prefix ending in `*`. */
export function granted(patterns: readonly string[], channel: string): boolean {
  for (const pattern of patterns) {
    if (pattern.endsWith('*') ? channel.startsWith(pattern.slice(0, -1)) : channel === pattern) return true;
  }
  return false;
}

/**
 * The token of an upgrade request, from where a client can put it: `?token=` (any client), the
 * `Authorization: Bearer` header (non-browser clients), a `bearer.<jwt>` item of
 * `Sec-WebSocket-Protocol` (a browser's way to keep it out of the URL, hence out of access logs), or the
 * `token` cookie. The first found, in that order; null when there is none.
 */
export function tokenOf(query: string, authorization: string, cookie: string, protocols = ''): string | null {
  return tokenSource(query, authorization, cookie, protocols)?.token ?? null;
}

/** Where a request's token came from: the cookie is sent by a browser on its own (origins.ts). */
export type TokenPlace = 'query' | 'header' | 'protocol' | 'cookie';

/** The prefix of the `Sec-WebSocket-Protocol` item that carries a token: `bearer.<jwt>`. */
export const BEARER_PROTOCOL_PREFIX = 'bearer.';

/** The token of {@link tokenOf}, with where it was found. */
export function tokenSource(query: string, authorization: string, cookie: string, protocols = ''): { token: string; from: TokenPlace } | null {
  const fromQuery = new URLSearchParams(query).get('token');
  if (fromQuery) return { token: fromQuery, from: 'query' };
  const bearer = /^Bearer\s+(\S+)$/i.exec(authorization);
  if (bearer) return { token: bearer[1], from: 'header' };
  for (const offered of protocols.split(',')) {
    const item = offered.trim();
    if (item.startsWith(BEARER_PROTOCOL_PREFIX) && item.length > BEARER_PROTOCOL_PREFIX.length) return { token: item.slice(BEARER_PROTOCOL_PREFIX.length), from: 'protocol' };
  }
  for (const part of cookie.split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === 'token' && value.length > 0) return { token: cookieValue(value.join('=')), from: 'cookie' };
  }
  return null;
}

/** A cookie value, percent-decoded; one that does not decode stays as sent, a token that will not verify (401). */
function cookieValue(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
