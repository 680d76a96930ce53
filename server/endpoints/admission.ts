/**
 * Who may open a WebSocket: the checks every upgrade passes before a socket exists. Each refusal is an
 * HTTP answer with a clear status, counted in `/stats` under `refused`:
 * - `shutting_down` 503: shutdown has begun.
 * - `handshake` 400 / 426: no valid `Sec-WebSocket-Key`, or a `Sec-WebSocket-Version` other than 13
 *   (426 names the version spoken, as RFC 6455 4.4 asks). uWS checks neither itself.
 * - `header_too_large` 431: request line and headers over `--max-header-size` (a head over uWS's own
 *   limit gets uWS's 431 before this check: docs/protocol.md, Deviations).
 * - `max_connections` 503: the process holds `--max-connections` WebSockets already.
 * - `per_ip` 429: the source address holds `--max-connections-per-ip` already.
 */
import { readFileSync } from 'node:fs';
import type { HttpRequest, HttpResponse } from '../engine.js';
import { defaultMaxConnections, type ServerOptions } from '../options.js';
import type { Stats } from '../stats.js';
import type { Logger, Throttle } from '../log.js';
import type { Refusal } from '../refusals.js';


/** A client key is 16 random bytes in base64 (RFC 6455 4.1). */
const CLIENT_KEY = /^[A-Za-z0-9+/]{22}==$/;

/** The process's open-file limit (soft; Node raises it to the hard one at start), or null where /proc does not tell. */
export function openFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line ? Number(line.split(/\s{2,}/)[1]) : NaN;
    return Number.isFinite(soft) ? soft : null;
  } catch {
    return null;
  }
}

/** The upgrade checks of one server, and the per-address counts they keep. */
export class Admission {
  /** WebSocket connections allowed at once (both endpoints). */
  readonly maxConnections: number;
  private readonly perIp = new Map<string, number>();

  constructor(
    private readonly options: ServerOptions,
    private readonly stats: Stats,
    private readonly log: Logger,
    private readonly throttle: Throttle,
  ) {
    const limit = openFileLimit();
    this.maxConnections = options.maxConnections ?? (limit === null ? Number.MAX_SAFE_INTEGER : defaultMaxConnections(limit));
  }

  /** Open WebSocket connections now. */
  private get open(): number {
    return this.stats.pubsubConnections + this.stats.echoConnections;
  }

  /**
   * Runs every check on an upgrade request. Returns the source address when the upgrade may go on (the
   * caller must upgrade now and call {@link release} with it when the socket closes), or null after it
   * has answered the refusal.
   */
  admit(res: HttpResponse, req: HttpRequest, shuttingDown: boolean): string | null {
    const options = this.options;
    if (shuttingDown) return this.refuse(res, 'shutting_down', '503 Service Unavailable', 'shutting down');
    if (headerSize(req) > options.maxHeaderSize) {
      return this.refuse(res, 'header_too_large', '431 Request Header Fields Too Large', `upgrade request over ${options.maxHeaderSize} bytes (--max-header-size)`);
    }
    if (req.getHeader('sec-websocket-version') !== '13') {
      res.writeStatus('426 Upgrade Required').writeHeader('Sec-WebSocket-Version', '13');
      res.end('only WebSocket version 13 is spoken', true);
      this.counted('handshake', '426 Upgrade Required', 'Sec-WebSocket-Version is not 13');
      return null;
    }
    if (!CLIENT_KEY.test(req.getHeader('sec-websocket-key'))) {
      return this.refuse(res, 'handshake', '400 Bad Request', 'Sec-WebSocket-Key must be 16 bytes in base64');
    }
    if (this.open >= this.maxConnections) {
      return this.refuse(res, 'max_connections', '503 Service Unavailable', `server full: ${this.maxConnections} connections (--max-connections)`);
    }
    const address = Buffer.from(res.getRemoteAddressAsText()).toString();
    const limit = options.maxConnectionsPerIp;
    if (limit > 0) {
      const held = this.perIp.get(address) ?? 0;
      if (held >= limit) {
        return this.refuse(res, 'per_ip', '429 Too Many Requests', `${limit} connections from this address (--max-connections-per-ip)`);
      }
      this.perIp.set(address, held + 1);
    }
    return address;
  }

  /** A socket admitted from `address` closed. */
  release(address: string): void {
    if (this.options.maxConnectionsPerIp === 0) return;
    const held = (this.perIp.get(address) ?? 1) - 1;
    if (held > 0) this.perIp.set(address, held);
    else this.perIp.delete(address);
  }

  /**
   * Refuses an upgrade that passed {@link admit} but failed a later check (a token): answers, counts,
   * logs, and gives back what admit took for `address`.
   */
  refuseAdmitted(res: HttpResponse, address: string, why: Refusal, status: string, text: string): void {
    this.release(address);
    this.refuse(res, why, status, text);
  }

  private refuse(res: HttpResponse, why: Refusal, status: string, text: string): null {
    this.counted(why, status, text);
    res.writeStatus(status).end(text, true);
    return null;
  }

  /** Counts a refusal and logs it, a line per reason per 10 s at most (a flood of refusals is one line). */
  private counted(why: Refusal, status: string, text: string): void {
    const count = ++this.stats.refused[why];
    // Refusals while shutting down are expected: clients reconnecting; they are counted, not logged.
    if (why === 'shutting_down') return;
    this.throttle.pass(`refused:${why}`, (suppressed) => this.log.warn({ reason: why, status, count, suppressed }, `upgrade refused: ${text}`));
  }
}

/** Bytes of the request line and headers, as far as uWS shows them (names lower-cased, no spacing). */
function headerSize(req: HttpRequest): number {
  let size = req.getMethod().length + req.getUrl().length + (req.getQuery() ?? '').length + 12;
  req.forEach((name, value) => (size += name.length + value.length + 4));
  return size;
}
