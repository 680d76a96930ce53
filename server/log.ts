/**
 * The server's log: pino, on stderr (stdout keeps the start banner that scripts read). JSON lines when
 * stderr is not a terminal, readable lines when it is. Events are logged, never messages: nothing on the
 * path of a frame or a delivery writes a line, and events that can come in floods (refused upgrades,
 * handler errors, Redis errors) go through a {@link Throttle}.
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger } from 'pino';

/** The levels `--log-level` takes, most to least severe; `silent` logs nothing. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * A logger writing to stderr at `level`. Lines are written synchronously: they are few, and a line
 * written just before `process.exit` must not be lost.
 */
export function createLog(level: LogLevel, { pretty: readable = process.stderr.isTTY === true } = {}): Logger {
  const stream = readable
    ? pretty({ destination: 2, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'hostname' })
    : pino.destination({ fd: 2, sync: true });
  return pino({ level, base: { pid: process.pid } }, stream);
}

/** A logger that writes nothing: the default of the library, whose user may pass their own. */
export function silentLog(): Logger {
  return pino({ level: 'silent' });
}

/**
 * At most one line per key per `intervalMs`: the first of a burst is logged at once, the rest are
 * counted, and the next line that gets through says how many were held back (`suppressed`). A flood of
 * refusals therefore costs a line every few seconds, not one per connection.
 */
export class Throttle {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly intervalMs = 10_000) {}

  /** Calls `write` with the count of lines held back since the last one, unless this key wrote recently. */
  pass(key: string, write: (suppressed: number) => void, now = Date.now()): void {
    const seen = this.last.get(key);
    if (seen && now - seen.at < this.intervalMs) {
      seen.suppressed++;
      return;
    }
    this.last.set(key, { at: now, suppressed: 0 });
    write(seen?.suppressed ?? 0);
  }
}

export { redactUrl } from './redact.js';
