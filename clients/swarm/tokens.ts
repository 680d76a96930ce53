/**
 * The token each swarm client brings to a server started with --jwt-secret: the one given (`--token`),
 * or one signed for it (`--token-secret`: HS256, sub `swarm-<index>`, valid 24 h), as `?token=`.
 * The engine signs them all before the run starts, so the ramp times connects, not signing.
 */
import { webcrypto } from 'node:crypto';

/** Seconds a signed token stays valid: longer than any run. */
const LIFETIME_S = 24 * 3600;

/** A token for each of `clients` clients, by client index. */
export async function signTokens(secret: string, clients: number): Promise<string[]> {
  // jose is loaded here, not with the module: every worker imports this module for withToken, and
  // loading jose costs each process 30-60 ms of CPU that a run without --token-secret never needs.
  const { SignJWT } = await import('jose');
  // The key imported once: signing with raw bytes would import it again for every token.
  const key = await webcrypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const now = Math.floor(Date.now() / 1000);
  const tokens: string[] = [];
  for (let i = 0; i < clients; i++) {
    tokens.push(await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(`swarm-${i}`).setIssuedAt(now).setExpirationTime(now + LIFETIME_S).sign(key));
  }
  return tokens;
}

/** `url` with `?token=` set. */
export function withToken(url: string, token: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('token', token);
  return parsed.toString();
}
