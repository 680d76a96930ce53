/**
 * The PostgreSQL monitor: LISTEN on some channels, and each NOTIFY becomes a message.
 *
 * Guarantees:
 * - Each NOTIFY received is handed to the mapping once, in the order PostgreSQL sent them (one
 *   connection, one at a time: an async mapping is awaited before the next notification).
 * - Delivery is to this instance's subscribers (`publishHere`): every instance that runs the monitor
 *   LISTENs by itself and PostgreSQL sends each of them the NOTIFY, so N instances deliver one copy
 *   each to their own subscribers, never N copies to anyone.
 * - Survives a lost connection (a PostgreSQL restart, `pg_terminate_backend`): it reconnects with
 *   backoff (0.1 s doubling to 5 s) and LISTENs again. NOTIFYs sent while it was not listening are
 *   lost: PostgreSQL keeps none for absent listeners. Counted as `reconnects`.
 * - A mapping that throws or a payload that is not JSON never stops the monitor: the first is counted
 *   (`mapping_errors`) and logged, the second is published as a JSON string.
 */
import pg from 'pg';
import { redactUrl, type Logger } from '../log.js';
import { parseChannel } from '../protocol/channels.js';
import { messageJsonOf, type Monitor, type MonitorSink } from './types.js';

/** A NOTIFY as the mapping sees it. */
export interface PgNotification {
  /** The PostgreSQL channel it was sent on. */
  channel: string;
  /** Its payload text ('' when none). */
  payload: string;
}

/** Publishes `message` (any JSON value) on the pub/sub `channel`, to this instance's subscribers. */
export type PgPublish = (channel: string, message: unknown) => void;

/** Turns a notification into messages: publish none, one or several. */
export type PgMapping = (notification: PgNotification, publish: PgPublish) => void | Promise<void>;

export interface PgNotifyOptions {
  /** `postgres://...` */
  url: string;
  /** PostgreSQL channels to LISTEN on. */
  channels: string[];
  /**
   * Without a mapping: the pub/sub channel for each PostgreSQL channel (itself when not listed). The
   * payload is published as it came, JSON as it is and anything else as a JSON string.
   */
  route?: Record<string, string>;
}

const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 5000;

/**
 * A LISTEN/NOTIFY monitor. With `mapping`, each notification goes to it, and what it publishes (any
 * JSON value) reaches this instance's subscribers. Without, a NOTIFY on `c` publishes its payload on
 * `route[c]` (or `c`); {@link pgNotifyChannels} takes `name=channel` pairs.
 * @throws RangeError when no channel is given or a routed pub/sub channel name is invalid.
 */
export function pgNotify(options: PgNotifyOptions, mapping?: PgMapping): Monitor {
  if (options.channels.length === 0) throw new RangeError('pgNotify: channels must name at least one PostgreSQL channel');
  const route = new Map(options.channels.map((c) => [c, options.route?.[c] ?? c]));
  for (const to of route.values()) if (!parseChannel(to)) throw new RangeError(`pgNotify: ${JSON.stringify(to)} is not a valid pub/sub channel name`);
  const counters = { notifications: 0, published: 0, mapping_errors: 0, reconnects: 0, connection_errors: 0 };
  let state = 'stopped';
  let client: pg.Client | null = null;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let queue: Promise<void> = Promise.resolve();
  let sink!: MonitorSink;
  let log!: Logger;
  const where = redactUrl(options.url);

  const publishJson = (channel: string, json: string): void => {
    counters.published++;
    sink.publishHere(channel, json);
  };
  const publish: PgPublish = (channel, message) => {
    if (!parseChannel(channel)) throw new TypeError(`${JSON.stringify(channel)} is not a valid pub/sub channel name`);
    const json = JSON.stringify(message);
    if (json === undefined) throw new TypeError(`the message for ${channel} is not JSON`);
    publishJson(channel, json);
  };

  const handle = async (notification: PgNotification): Promise<void> => {
    counters.notifications++;
    try {
      if (mapping) await mapping(notification, publish);
      else publishJson(route.get(notification.channel)!, messageJsonOf(notification.payload));
    } catch (err) {
      counters.mapping_errors++;
      log.error({ monitor: name, pg_channel: notification.channel, err: (err as Error).message }, 'monitor: the mapping threw; notification skipped');
    }
  };

  async function connect(): Promise<void> {
    const next = new pg.Client({ connectionString: options.url, application_name: `uws-pubsub-monitor ${process.pid}`, connectionTimeoutMillis: 3000 });
    next.on('error', (err) => lost(next, err));
    next.on('end', () => lost(next, null));
    next.on('notification', (m) => {
      const notification = { channel: m.channel, payload: m.payload ?? '' };
      queue = queue.then(() => handle(notification));
    });
    await next.connect();
    // Identifiers quoted, so any channel name PostgreSQL accepts works (and none can inject SQL).
    for (const channel of options.channels) await next.query(`LISTEN ${next.escapeIdentifier(channel)}`);
    client = next;
    state = 'watching';
  }

  /** The connection went: listen again on a new one, unless stopping. */
  function lost(which: pg.Client, err: Error | null): void {
    if (client !== which || stopped) return;
    client = null;
    state = 'reconnecting';
    counters.connection_errors++;
    which.removeAllListeners('notification');
    void which.end().catch(() => {});
    log.warn({ monitor: name, url: where, err: err?.message ?? 'connection ended' }, 'monitor: PostgreSQL connection lost; listening again');
    retry(RETRY_FIRST_MS);
  }

  function retry(delayMs: number): void {
    retryTimer = setTimeout(() => {
      if (stopped) return;
      connect().then(
        () => {
          counters.reconnects++;
          log.info({ monitor: name, url: where }, 'monitor: listening again');
        },
        (err: Error) => {
          log.debug({ monitor: name, err: err.message }, 'monitor: reconnect failed');
          retry(Math.min(delayMs * 2, RETRY_MAX_MS));
        },
      );
    }, delayMs);
  }

  const name = `pg-notify:${options.channels.join(',')}`;
  return {
    name,
    async start(to, logger) {
      sink = to;
      log = logger;
      stopped = false;
      try {
        await connect();
      } catch (err) {
        state = 'stopped';
        throw new Error(`pg-notify: cannot LISTEN at ${where}: ${(err as Error).message}`);
      }
      log.info({ monitor: name, url: where }, 'monitor: listening');
    },
    async stop() {
      stopped = true;
      clearTimeout(retryTimer);
      state = 'stopped';
      const last = client;
      client = null;
      await last?.end().catch(() => {});
      await queue;
    },
    state: () => state,
    counters: () => ({ ...counters }),
  };
}

/**
 * `name[=channel]` pairs (the `--pg-notify-channel` flag) as a mapping: a NOTIFY on `name` publishes
 * its payload on `channel` (`name` itself when no `=` is given).
 */
export function pgNotifyChannels(url: string, pairs: string[]): Monitor {
  const routes = new Map<string, string>();
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    const from = at < 0 ? pair : pair.slice(0, at);
    const to = at < 0 ? pair : pair.slice(at + 1);
    if (!from || !to) throw new RangeError(`--pg-notify-channel: expected name or name=channel, got ${JSON.stringify(pair)}`);
    routes.set(from, to);
  }
  return pgNotify({ url, channels: [...routes.keys()], route: Object.fromEntries(routes) });
}
