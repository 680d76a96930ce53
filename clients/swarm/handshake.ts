/**
 * The client side of the WebSocket opening handshake (RFC 6455 section 4), by hand on a raw socket: one
 * request written at once, and the response's status line and the headers the RFC makes the client
 * check. Pure but for the key pool.
 */
import { createHash, randomBytes } from 'node:crypto';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * Sec-WebSocket-Key values come from a pool made once per process, each with the accept value it must
 * be answered with: a fresh key per connect costs a random read and a SHA-1 per client, and the key
 * only proves that the server read this request (section 1.3), which a key from the pool proves too.
 */
const KEY_POOL = Array.from({ length: 64 }, () => {
  const key = randomBytes(16).toString('base64');
  return { key, accept: createHash('sha1').update(key + GUID).digest('base64') };
});
let nextKey = 0;

/** Where a ws:// URL leads, and the request that upgrades a connection to it. */
export interface UpgradeTarget {
  host: string;
  port: number;
  tls: boolean;
  /** Everything of the request but the key line and the end of the head. */
  requestHead: string;
}

const targets = new Map<string, UpgradeTarget>();

/** Parses a ws:// or wss:// URL once; later calls with the same URL get the same target. */
export function upgradeTarget(url: string): UpgradeTarget {
  let target = targets.get(url);
  if (target) return target;
  const parsed = new URL(url);
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') throw new Error(`not a ws:// or wss:// URL: ${url}`);
  const tls = parsed.protocol === 'wss:';
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(parsed.port) || (tls ? 443 : 80);
  target = {
    host,
    port,
    tls,
    requestHead:
      `GET ${parsed.pathname || '/'}${parsed.search} HTTP/1.1\r\nHost: ${parsed.host}\r\n` +
      'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n',
  };
  targets.set(url, target);
  return target;
}

/** The request to write, and the accept value the response must carry. */
export function upgradeRequest(target: UpgradeTarget): { request: string; accept: string } {
  const { key, accept } = KEY_POOL[nextKey++ & 63];
  return { request: `${target.requestHead}Sec-WebSocket-Key: ${key}\r\n\r\n`, accept };
}

/** What a response head says: upgraded, or why not. */
export type UpgradeResult = { ok: true } | { ok: false; status: number | null; message: string };

/** Checks a response head (up to, not including, the blank line) against the accept value expected. */
export function checkUpgradeResponse(head: string, accept: string): UpgradeResult {
  const status = /^HTTP\/1\.1 (\d{3})/.exec(head);
  if (!status) return { ok: false, status: null, message: `not an HTTP/1.1 response: ${head.slice(0, 40)}` };
  const code = Number(status[1]);
  if (code !== 101) return { ok: false, status: code, message: `upgrade answered with HTTP ${code}` };
  const lower = head.toLowerCase();
  if (!/\r\nupgrade: *websocket *(\r\n|$)/.test(lower)) return { ok: false, status: 101, message: 'Invalid Upgrade header' };
  const given = /\r\nsec-websocket-accept: *([^\r\n]*?) *(\r\n|$)/i.exec(head)?.[1];
  if (given !== accept) return { ok: false, status: 101, message: 'Invalid Sec-WebSocket-Accept header' };
  if (lower.includes('\r\nsec-websocket-extensions:')) return { ok: false, status: 101, message: 'Server sent a Sec-WebSocket-Extensions header but no extension was requested' };
  return { ok: true };
}
