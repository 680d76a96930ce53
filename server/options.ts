/**
 * Server options: one typed defaults object and one validator. Every message names the option as its
 * caller wrote it: camelCase for the library, the flag for the command line.
 */
import { MIN_SECRET_BYTES } from './identity.js';
import { LOG_LEVELS, type LogLevel } from './log.js';

/** Where the `slow` action does its waiting. */
export const SLOW_IO_BACKENDS = ['timer', 'redis', 'postgres'] as const;

export type SlowIoBackend = (typeof SLOW_IO_BACKENDS)[number];

/** Everything `createServer` accepts. Sizes are in bytes, durations as named. */
export interface ServerOptions {
  /** TCP port; 0 picks a free one. Default 9000. */
  port: number;
  /** Address to listen on. Default `0.0.0.0`. */
  host: string;
  /** Largest WebSocket frame and `POST /publish` body, in bytes. Default 65536. */
  maxPayload: number;
  /** Subscriptions one connection may hold. Default 1000. */
  maxSubscriptions: number;
  /** Frames per second one connection may send; 0 = no limit. Default 0. */
  rateLimit: number;
  /** Bytes queued for one connection before it is closed as a slow consumer. Default 1 MiB. */
  maxBackpressure: number;
  /** Seconds without traffic before a connection is closed; pings are sent automatically. 0 = never. */
  idleTimeout: number;
  /** Seconds the last message of each channel is kept for new subscribers; 0 = none. Default 0. */
  expire: number;
  /** Bearer key that `POST /publish` requires; without it HTTP publishing is disabled. */
  publishKey: string | null;
  /** Whether WebSocket clients may publish on broadcast channels. Default true. */
  clientPublish: boolean;
  /** Backend of the `slow` action. Default `timer`. */
  slowIo: SlowIoBackend;
  /** URL of the slow-IO backend's server; default per backend (local Redis / PostgreSQL `test`). */
  slowIoUrl: string | null;
  /** Connections the redis/postgres slow-IO backend holds; bounds its concurrent waits. Default 10. */
  slowIoPool: number;
  /** Milliseconds that shutdown waits for clients to close before it stops anyway. Default 5000. */
  shutdownTimeout: number;
  /** Redis to bridge instances through (`redis://host:port/db`); null keeps everything in this process. */
  redis: string | null;
  /**
   * Redis Cluster seed nodes (`host:port,host:port`) to bridge through with sharded pub/sub
   * (SPUBLISH/SSUBSCRIBE); null for none. Instead of `redis`, not with it.
   */
  redisCluster: string | null;
  /** Namespace of every Redis name (`<prefix>:broadcast:news`); empty for none. Needs `redis` or `redisCluster`. */
  prefix: string;
  /**
   * Listen with SO_REUSEPORT, so several processes share one port and the kernel spreads connections
   * over them (`--workers`). Off by default: a second server on a taken port must fail, not share it.
   */
  reusePort: boolean;
  /**
   * WebSocket connections this process accepts (both endpoints); past it an upgrade gets 503 at once.
   * Null: derived at start from the open-file limit (see {@link defaultMaxConnections}), so that files
   * stay free for HTTP requests, Redis and PostgreSQL, and the server never runs out of them.
   */
  maxConnections: number | null;
  /** WebSocket connections one source address may hold; 0 = no limit (the default: benchmarks connect from one address). */
  maxConnectionsPerIp: number;
  /** Deepest nesting of arrays and objects in a frame or `/publish` body; deeper is `too_deep`. Default 64. */
  maxJsonDepth: number;
  /** Largest WebSocket upgrade request (request line and headers), bytes; larger gets 431. Default 8192. */
  maxHeaderSize: number;
  /**
   * Secret of the HS256 tokens (at least 32 bytes); null: tokens are not read and every client is
   * anonymous. The CLI also takes it from a file (`--jwt-secret-file`).
   */
  jwtSecret: string | null;
  /** Refuse `/pubsub` and `/echo` upgrades without a valid token (401). Needs `jwtSecret`. Default false. */
  requireAuth: boolean;
  /** Milliseconds a hook may take before it counts as failed (`hook_failed`). Default 5000. */
  hookTimeout: number;
  /**
   * Keep who is subscribed to each channel (the `presence` action, join/leave events); with `redis`,
   * across instances. Default false: a server that does not use it pays nothing for it.
   */
  presence: boolean;
  /** Milliseconds between presence heartbeats (with `redis`): a dead instance drops out within two. Default 5000. */
  presenceHeartbeat: number;
  /**
   * Messages kept per channel for `history` and recovery (`since`); 0 = none, and messages carry no
   * offset. In one process only for now (not with `redis` or `redisCluster`). Default 0.
   */
  history: number;
  /** Seconds a kept message stays in the history. Default 300. */
  historyTtl: number;
  /** Least severe level logged (to stderr): events such as Redis outages, slow consumers cut, refusals. Default `info`. */
  logLevel: LogLevel;
}

/** The defaults of every option. */
export const DEFAULT_OPTIONS: Readonly<ServerOptions> = Object.freeze({
  port: 9000,
  host: '0.0.0.0',
  maxPayload: 65_536,
  maxSubscriptions: 1000,
  rateLimit: 0,
  maxBackpressure: 1_048_576,
  idleTimeout: 120,
  expire: 0,
  publishKey: null,
  clientPublish: true,
  slowIo: 'timer',
  slowIoUrl: null,
  slowIoPool: 10,
  shutdownTimeout: 5000,
  redis: null,
  redisCluster: null,
  prefix: '',
  reusePort: false,
  maxConnections: null,
  maxConnectionsPerIp: 0,
  maxJsonDepth: 64,
  maxHeaderSize: 8192,
  jwtSecret: null,
  requireAuth: false,
  hookTimeout: 5000,
  presence: false,
  presenceHeartbeat: 5000,
  history: 0,
  historyTtl: 300,
  logLevel: 'info',
});

/** Default URL of each real-IO slow backend. */
export const DEFAULT_SLOW_IO_URLS: Readonly<Record<Exclude<SlowIoBackend, 'timer'>, string>> = {
  redis: 'redis://127.0.0.1:6379',
  postgres: 'postgres://postgres@127.0.0.1:5432/test',
};

/** The command-line flag of each option. */
export const FLAGS: Readonly<Record<keyof ServerOptions, string>> = {
  port: '--port',
  host: '--host',
  maxPayload: '--max-payload',
  maxSubscriptions: '--max-subscriptions',
  rateLimit: '--rate-limit',
  maxBackpressure: '--max-backpressure',
  idleTimeout: '--idle-timeout',
  expire: '--expire',
  publishKey: '--publish-key',
  clientPublish: '--client-publish',
  slowIo: '--slow-io',
  slowIoUrl: '--slow-io-url',
  slowIoPool: '--slow-io-pool',
  shutdownTimeout: '--shutdown-timeout',
  redis: '--redis',
  redisCluster: '--redis-cluster',
  prefix: '--prefix',
  reusePort: '--reuse-port',
  maxConnections: '--max-connections',
  maxConnectionsPerIp: '--max-connections-per-ip',
  maxJsonDepth: '--max-json-depth',
  maxHeaderSize: '--max-header-size',
  jwtSecret: '--jwt-secret',
  requireAuth: '--require-auth',
  hookTimeout: '--hook-timeout',
  presence: '--presence',
  presenceHeartbeat: '--presence-heartbeat',
  history: '--history',
  historyTtl: '--history-ttl',
  logLevel: '--log-level',
};

const INTEGER_RANGES: Partial<Record<keyof ServerOptions, [number, number]>> = {
  port: [0, 65_535],
  maxPayload: [128, 16 * 1024 * 1024],
  maxSubscriptions: [1, 1_000_000],
  rateLimit: [0, 1_000_000],
  maxBackpressure: [1024, 1024 * 1024 * 1024],
  expire: [0, 31_536_000],
  slowIoPool: [1, 1000],
  shutdownTimeout: [0, 600_000],
  maxConnectionsPerIp: [0, 10_000_000],
  maxJsonDepth: [1, 1000],
  maxHeaderSize: [1024, 1024 * 1024],
  hookTimeout: [1, 600_000],
  presenceHeartbeat: [100, 600_000],
  history: [0, 1_000_000],
  historyTtl: [1, 31_536_000],
};

/** How an error message names an option: as the library takes it (`maxPayload`) or as the command line does (`--max-payload`). */
export type OptionNames = 'options' | 'flags';

/**
 * Merges `input` over the defaults and checks every field.
 * @throws TypeError for a value of the wrong type, RangeError for one out of range; the message names
 *   the option as its caller wrote it: `maxPayload must be an integer from 128 to 16777216 (got -1)`
 *   from the library, `--max-payload must be ...` with `names` = `flags` (the command line).
 */
export function validateOptions(input: Partial<ServerOptions> = {}, names: OptionNames = 'options'): ServerOptions {
  const n = (key: keyof ServerOptions): string => (names === 'flags' ? FLAGS[key] : key);
  for (const key of Object.keys(input)) {
    if (!(key in DEFAULT_OPTIONS)) throw new TypeError(`unknown option "${key}"`);
  }
  const options: ServerOptions = { ...DEFAULT_OPTIONS, ...stripUndefined(input) };
  for (const [key, [min, max]] of Object.entries(INTEGER_RANGES) as [keyof ServerOptions, [number, number]][]) {
    checkInteger(n(key), options[key], min, max);
  }
  checkInteger(n('idleTimeout'), options.idleTimeout, 0, 960);
  if (options.idleTimeout > 0 && options.idleTimeout < 8) {
    throw new RangeError(`${n('idleTimeout')} must be 0 (off) or from 8 to 960 seconds (got ${options.idleTimeout})`);
  }
  if (options.maxConnections !== null) checkInteger(n('maxConnections'), options.maxConnections, 1, 10_000_000);
  checkString(n('host'), options.host, false);
  checkString(n('publishKey'), options.publishKey, true);
  checkString(n('slowIoUrl'), options.slowIoUrl, true);
  checkBoolean(n('clientPublish'), options.clientPublish);
  checkBoolean(n('reusePort'), options.reusePort);
  checkString(n('jwtSecret'), options.jwtSecret, true);
  if (options.jwtSecret !== null && Buffer.byteLength(options.jwtSecret) < MIN_SECRET_BYTES) {
    throw new RangeError(`${n('jwtSecret')} must be at least ${MIN_SECRET_BYTES} bytes for HS256 (got ${Buffer.byteLength(options.jwtSecret)})`);
  }
  checkBoolean(n('requireAuth'), options.requireAuth);
  if (options.requireAuth && options.jwtSecret === null) throw new RangeError(`${n('requireAuth')} needs ${n('jwtSecret')}`);
  checkBoolean(n('presence'), options.presence);
  if (!LOG_LEVELS.includes(options.logLevel)) {
    throw new RangeError(`${n('logLevel')} must be one of ${LOG_LEVELS.join(', ')} (got ${show(options.logLevel)})`);
  }
  if (!SLOW_IO_BACKENDS.includes(options.slowIo)) {
    throw new RangeError(`${n('slowIo')} must be one of ${SLOW_IO_BACKENDS.join(', ')} (got ${show(options.slowIo)})`);
  }
  checkString(n('redis'), options.redis, true);
  if (options.redis !== null && !/^rediss?:\/\/[^\s]+$/.test(options.redis)) {
    throw new RangeError(`${n('redis')} must be a redis:// or rediss:// URL (got ${show(options.redis)})`);
  }
  if (typeof options.prefix !== 'string' || !/^[A-Za-z0-9_.:@-]{0,100}$/.test(options.prefix)) {
    throw new RangeError(`${n('prefix')} must be up to 100 characters of A-Z a-z 0-9 _ - . : @ (got ${show(options.prefix)})`);
  }
  checkString(n('redisCluster'), options.redisCluster, true);
  if (options.redisCluster !== null) {
    if (!/^[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*$/.test(options.redisCluster)) {
      throw new RangeError(`${n('redisCluster')} must be host:port of one or more cluster nodes, comma-separated (got ${show(options.redisCluster)})`);
    }
    if (options.redis !== null) throw new RangeError(`${n('redisCluster')} and ${n('redis')} exclude each other: bridge through one Redis or one cluster`);
  }
  if (options.history > 0 && options.redisCluster !== null) {
    throw new RangeError(`${n('history')} works with ${n('redis')} or in one process, not yet with ${n('redisCluster')}`);
  }
  if (options.presence && options.redisCluster !== null) {
    throw new RangeError(`${n('presence')} works with ${n('redis')} or in one process, not yet with ${n('redisCluster')}`);
  }
  if (options.prefix !== '' && options.redis === null && options.redisCluster === null) {
    throw new RangeError(`${n('prefix')} needs ${n('redis')} or ${n('redisCluster')}`);
  }
  if (options.slowIoUrl !== null && options.slowIo === 'timer') {
    throw new RangeError(`${n('slowIoUrl')} needs ${n('slowIo')} redis or postgres`);
  }
  return options;
}

function stripUndefined<T extends object>(input: T): Partial<T> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw new TypeError(`${name} must be an integer from ${min} to ${max} (got ${show(value)})`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max} (got ${show(value)})`);
  }
}

function checkString(name: string, value: unknown, nullable: boolean): void {
  if (value === null && nullable) return;
  if (typeof value !== 'string' || value === '') {
    throw new TypeError(`${name} must be a non-empty string (got ${show(value)})`);
  }
}

function checkBoolean(name: string, value: unknown): void {
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be true or false (got ${show(value)})`);
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** Files kept free below the open-file limit for what is not a WebSocket: HTTP requests, Redis, PostgreSQL, logs. */
export function fileReserve(openFileLimit: number): number {
  return Math.max(64, Math.min(1000, Math.floor(openFileLimit * 0.05)));
}

/**
 * The default of `--max-connections`: the open-file limit less {@link fileReserve}. At the limit
 * itself uSockets' accept fails with EMFILE and it retries at once, forever: new clients then get a
 * TCP connection but no answer, and a core spins. Below it, an upgrade past the maximum still has a file
 * to be answered 503 with.
 */
export function defaultMaxConnections(openFileLimit: number): number {
  return Math.max(1, openFileLimit - fileReserve(openFileLimit));
}
