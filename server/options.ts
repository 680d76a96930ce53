/**
 * Server options, each declared once in {@link SERVER_OPTION_SPEC}; the type, the defaults, the flags, the
 * command line and the validator are derived from it. Every message names the option as its caller
 * wrote it: camelCase for the library, the flag for the command line.
 */
import { MIN_SECRET_BYTES } from './identity.js';
import { LOG_LEVELS } from './log.js';
import { MAX_SLOW_MS } from './protocol/index.js';
import { isOriginPattern } from './origins.js';
import { argsOf, checkOptions, choice, defaultsOf, flagOf, flagsOf, integer, list, onOff, optionalInteger, optionalText, text, type OptionSpecs, type OptionsOf } from './option-spec.js';

/** Where the `slow` action does its waiting. */
export const SLOW_IO_BACKENDS = ['off', 'timer', 'redis', 'postgres'] as const;

export type SlowIoBackend = (typeof SLOW_IO_BACKENDS)[number];

/** The default namespace of Redis names. */
export const DEFAULT_PREFIX = 'pubsub';

/** Default URL of each real-IO slow backend. */
export const DEFAULT_SLOW_IO_URLS: Readonly<Record<Exclude<SlowIoBackend, 'off' | 'timer'>, string>> = {
  redis: 'redis://127.0.0.1:6379',
  postgres: 'postgres://postgres@127.0.0.1:5432/test',
};

/**
 * Every option `createServer` and the command line take, declared once (see option-spec.ts): the flag is
 * the kebab-case of the name (`maxPayload`, `--max-payload`). Sizes are in bytes, durations as named.
 */
export const SERVER_OPTION_SPEC = {
  /** TCP port; 0 picks a free one. Default 9000. */
  port: integer(9000, 0, 65_535, 'TCP port; 0 picks a free one'),
  /** Address to listen on. Default `0.0.0.0`. */
  host: text('0.0.0.0', 'address to listen on', { nonEmpty: true }),
  /** Largest WebSocket frame and `POST /publish` body, in bytes. Default 65536. */
  maxPayload: integer(65_536, 128, 16 * 1024 * 1024, 'largest frame and POST /publish body, bytes; a larger frame closes with 1009, a larger body gets 413'),
  /** Subscriptions one connection may hold. Default 1000. */
  maxSubscriptions: integer(1000, 1, 1_000_000, 'subscriptions per connection; past it: too_many_subscriptions'),
  /**
   * Requests of one connection taken and not yet answered (waiting behind a hook, for Redis, in a `slow`
   * wait); past it a request is answered `busy` and not taken. Default 4096.
   */
  maxPendingRequests: integer(4096, 1, 1_000_000, 'requests of one connection in progress at once (behind a hook, waiting for Redis, slow); past it: busy, not taken'),
  /**
   * Bytes those requests hold: each its frame and PENDING_REQUEST_BYTES for its records; past it:
   * `busy`. Default 1 MiB.
   */
  maxPendingBytes: integer(1_048_576, 1024, 1024 * 1024 * 1024, 'bytes the requests of one connection in progress hold at once (each its frame and 256 for its records); past it: busy, not taken'),
  /**
   * Frames per second one connection may send; 0 = no limit. Default 1000: a client that sends more costs
   * everyone else the server's time (a benchmark's publisher turns it off with --bench).
   */
  rateLimit: integer(1000, 0, 1_000_000, 'frames per second per connection; 0 = off; past it: rate_limited'),
  /** Bytes queued for one connection before it is closed as a slow consumer. Default 1 MiB. */
  maxBackpressure: integer(1_048_576, 1024, 1024 * 1024 * 1024, 'bytes queued for one connection before it is closed as a slow consumer (goodbye, 1008); at least twice --max-payload', {
    // A frame as large as the limit would cut every subscriber of its channel that has any backlog.
    relation: (o, n) => ((o.maxPayload as number) * 2 > (o.maxBackpressure as number) ? `${n('maxPayload')} (${o.maxPayload}) must be at most half of ${n('maxBackpressure')} (${o.maxBackpressure}): one publish that large would cut every subscriber that has anything queued` : undefined),
  }),
  /** Seconds without traffic before a connection is closed; pings are sent automatically. 0 = never. Default 120. */
  idleTimeout: integer(120, 0, 960, 'seconds without traffic before a connection closes; pings are sent automatically; 0 = off, else 8 to 960', {
    // uWS refuses a timeout under 8 s: its pings go out a few seconds before the timeout.
    rule: (seconds) => (seconds > 0 && seconds < 8 ? 'must be 0 (off) or from 8 to 960 seconds' : undefined),
  }),
  /** Seconds the last message of each channel is kept for new subscribers; 0 = none. Default 0. */
  expire: integer(0, 0, 31_536_000, 'seconds the last message of a channel is kept for new subscribers; 0 = keep nothing'),
  /** Bearer key that `POST /publish` requires; without it HTTP publishing is disabled. */
  publishKey: optionalText('bearer key for POST /publish; without it HTTP publishing is off (403)'),
  /** Whether WebSocket clients may publish on broadcast channels. Default true. */
  clientPublish: onOff(true, 'let WebSocket clients publish on broadcast channels (--no-client-publish: server side only)'),
  /**
   * Backend of the `slow` action, a benchmark's surface. Default `off`: the action answers `disabled`,
   * so that no client of a public server can hold timers or the pool of a shared database.
   */
  slowIo: choice(SLOW_IO_BACKENDS, 'off', `backend of the slow action, for the slow-IO benchmarks (at most ${MAX_SLOW_MS} ms a request): off answers disabled; timer has no concurrency bound; redis (BLPOP) and postgres (pg_sleep) hold a pooled connection per waiting request, so at most --slow-io-pool wait at once`),
  /** URL of the slow-IO backend's server; default per backend (local Redis / PostgreSQL `test`). */
  slowIoUrl: optionalText(`server of the redis/postgres slow backend (default ${DEFAULT_SLOW_IO_URLS.redis} or ${DEFAULT_SLOW_IO_URLS.postgres})`, {
    url: true,
    relation: (o, n) => (o.slowIoUrl !== null && (o.slowIo === 'timer' || o.slowIo === 'off') ? `${n('slowIoUrl')} needs ${n('slowIo')} redis or postgres` : undefined),
  }),
  /** Connections the redis/postgres slow-IO backend holds; bounds its concurrent waits. Default 10. */
  slowIoPool: integer(10, 1, 1000, 'connections of the redis/postgres slow backend: its concurrency bound (keep it under PostgreSQL max_connections)'),
  /**
   * Serve `/echo`, the C10k benchmarks' echo endpoint. Default false (404): it runs no `authenticate`
   * hook, and every socket of it counts against `maxConnections`.
   */
  echo: onOff(false, 'serve /echo, the echo endpoint of the C10k benchmarks (it runs no authenticate hook and its sockets count against --max-connections); off: 404'),
  /**
   * Serve `/stats` and `/metrics` on `port` too, as the benchmarks read them. Default false: they are
   * the operator's, served only on the admin listener (`adminPort`).
   */
  publicStats: onOff(false, 'serve /stats and /metrics on --port too, for benchmarks; off: 404 there, and they are served on the admin listener (--admin-port) only'),
  /** Port of the admin listener (`/stats`, `/metrics`, `/health` on `adminHost`); 0 picks a free one; null: none. */
  adminPort: optionalInteger(0, 65_535, 'port of the admin listener, which serves /stats, /metrics and /health on --admin-host; 0 picks a free one; without it there is none'),
  /** Address of the admin listener. Default `127.0.0.1`: the counters are the operator's. */
  adminHost: text('127.0.0.1', 'address of the admin listener (loopback by default: the counters are for the operator)', { nonEmpty: true }),
  /** Milliseconds that shutdown waits for clients to close before it stops anyway. Default 5000. */
  shutdownTimeout: integer(5000, 0, 600_000, 'ms that shutdown waits for clients to close after goodbye'),
  /** Redis to bridge instances through (`redis://host:port/db`); null keeps everything in this process. */
  redis: optionalText('bridge instances through this Redis (redis://host:port/db); without it everything stays in this process', {
    url: true,
    rule: (url) => (url !== null && !/^rediss?:\/\/[^\s]+$/.test(url) ? 'must be a redis:// or rediss:// URL' : undefined),
  }),
  /**
   * Milliseconds Redis (`redis`) may take to answer the probe PING (sent every 500 ms) before it counts as
   * not answering: then /health says 503 and publishes reach this instance only, as in an outage. Default 2000.
   */
  redisTimeout: integer(2000, 100, 60_000, 'ms Redis may take to answer a probe (every 500 ms) before it counts as not answering: /health 503, and publishes reach this instance only until it answers, as in an outage'),
  /**
   * Redis Cluster seed nodes (`host:port,host:port`) to bridge through with sharded pub/sub
   * (SPUBLISH/SSUBSCRIBE); null for none. Instead of `redis`, not with it.
   */
  redisCluster: optionalText('bridge instances through a Redis Cluster with sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7): host:port of one or more of its nodes, comma-separated; instead of --redis', {
    rule: (nodes) => (nodes !== null && !/^[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*$/.test(nodes) ? 'must be host:port of one or more cluster nodes, comma-separated' : undefined),
    relation: (o, n) => (o.redisCluster !== null && o.redis !== null ? `${n('redisCluster')} and ${n('redis')} exclude each other: bridge through one Redis or one cluster` : undefined),
  }),
  /**
   * Namespace of every Redis name (`pubsub:broadcast:news`), so that channel names, which clients choose,
   * never name keys of another program in a shared database; empty for none. Default `pubsub`.
   */
  prefix: text(DEFAULT_PREFIX, 'namespace of every Redis channel and key (pubsub:broadcast:news), so that channel names clients choose never name another program\'s keys; empty for none; with --redis or --redis-cluster', {
    rule: (prefix) => (/^[A-Za-z0-9_.:@-]{0,100}$/.test(prefix) ? undefined : 'must be up to 100 characters of A-Z a-z 0-9 _ - . : @'),
    relation: (o, n) => (o.prefix !== DEFAULT_PREFIX && o.redis === null && o.redisCluster === null ? `${n('prefix')} needs ${n('redis')} or ${n('redisCluster')}` : undefined),
  }),
  /**
   * Listen with SO_REUSEPORT, so several processes share one port and the kernel spreads connections
   * over them (`--workers`). Off by default: a second server on a taken port must fail, not share it.
   */
  reusePort: onOff(false, 'listen with SO_REUSEPORT so several processes share the port (set by --workers; off: a taken port is an error)'),
  /**
   * WebSocket connections this process accepts (both endpoints); past it an upgrade gets 503 at once.
   * Null: derived at start from the open-file limit (see {@link defaultMaxConnections}), so that files
   * stay free for HTTP requests, Redis and PostgreSQL, and the server never runs out of them.
   */
  maxConnections: optionalInteger(1, 10_000_000, 'WebSocket connections at once; past it an upgrade gets 503 (default: the open-file limit less a reserve of 5%, 64 to 1000, for HTTP, Redis and PostgreSQL)'),
  /** WebSocket connections one source address may hold; 0 = no limit (the default: benchmarks connect from one address). */
  maxConnectionsPerIp: integer(0, 0, 10_000_000, 'WebSocket connections one source address may hold; past it 429; 0 = no limit'),
  /** Deepest nesting of arrays and objects in a frame or `/publish` body; deeper is `too_deep`. Default 64. */
  maxJsonDepth: integer(64, 1, 1000, 'deepest nesting of arrays and objects in a frame or /publish body (the whole frame; a publish takes 2); deeper: too_deep'),
  /** Largest WebSocket upgrade request (request line and headers), bytes; larger gets 431. Default 8192. */
  maxHeaderSize: integer(8192, 1024, 1024 * 1024, 'largest WebSocket upgrade request line and headers, bytes; larger: 431'),
  /**
   * Secret of the HS256 tokens (at least 32 bytes); null: tokens are not read and every client is
   * anonymous. The CLI also takes it from a file (`--jwt-secret-file`).
   */
  jwtSecret: optionalText(`secret of the HS256 tokens (at least ${MIN_SECRET_BYTES} bytes) that name a client's user and session: ?token=, Authorization: Bearer or the token cookie; a bad or expired token gets 401; without it every client is anonymous`, {
    secret: true,
    rule: (secret) => (secret !== null && Buffer.byteLength(secret) < MIN_SECRET_BYTES ? `must be at least ${MIN_SECRET_BYTES} bytes for HS256 (got ${Buffer.byteLength(secret)})` : undefined),
  }),
  /**
   * Page origins, besides the server's own, that may open a WebSocket with the `token` cookie
   * (`https://app.example.com`, `https://*.example.com`, `*.example.com`, or `*` for any); once some are
   * listed, every upgrade that carries an `Origin` must match. Refused: 403, counted in `refused.origin`.
   */
  allowedOrigins: list('must be origins (https://app.example.com), patterns (https://*.example.com, *.example.com) or *', isOriginPattern, 'page origins besides the server\'s own that may open a WebSocket with the token cookie (https://app.example.com, https://*.example.com, *.example.com; * for any), comma-separated; once given, every upgrade with an Origin header must match one; else 403'),
  /** The `aud` a token must name (one of, when it names a list); null: not checked. Needs `jwtSecret`. */
  jwtAudience: optionalText('the aud a token must name (refused: 401 token claim aud is not valid); needs --jwt-secret', {
    relation: (o, n) => (o.jwtAudience !== null && o.jwtSecret === null ? `${n('jwtAudience')} needs ${n('jwtSecret')}` : undefined),
  }),
  /** The `iss` a token must name; null: not checked. Needs `jwtSecret`. */
  jwtIssuer: optionalText('the iss a token must name (refused: 401 token claim iss is not valid); needs --jwt-secret', {
    relation: (o, n) => (o.jwtIssuer !== null && o.jwtSecret === null ? `${n('jwtIssuer')} needs ${n('jwtSecret')}` : undefined),
  }),
  /** Seconds of clock skew allowed on a token's `exp` and `nbf` (a connection also ends that much after `exp`). Default 0. */
  jwtClockTolerance: integer(0, 0, 300, 'seconds of clock skew allowed on a token\'s exp and nbf, between the token\'s issuer and this server (a connection ends that much after exp too)'),
  /** Refuse `/pubsub` and `/echo` upgrades without a valid token (401). Needs `jwtSecret`. Default false. */
  requireAuth: onOff(false, '/pubsub and /echo upgrades without a valid token get 401 (needs --jwt-secret)', {
    relation: (o, n) => (o.requireAuth && o.jwtSecret === null ? `${n('requireAuth')} needs ${n('jwtSecret')}` : undefined),
  }),
  /** Milliseconds a hook may take before it counts as failed (`hook_failed`). Default 5000. */
  hookTimeout: integer(5000, 1, 600_000, 'ms a hook of the library API may take before it counts as failed (hook_failed)'),
  /**
   * Keep who is subscribed to each channel (the `presence` action, join/leave events); with `redis`,
   * across instances. Default false: a server that does not use it pays nothing for it.
   */
  presence: onOff(false, 'keep who is subscribed to each channel: the presence action and join/leave events (subscribe with join_leave); with --redis across instances', {
    relation: (o, n) => (o.presence && o.redisCluster !== null ? `${n('presence')} works with ${n('redis')} or in one process, not yet with ${n('redisCluster')}` : undefined),
  }),
  /** Milliseconds between presence heartbeats (with `redis`): a dead instance drops out within two. Default 5000. */
  presenceHeartbeat: integer(5000, 100, 600_000, 'ms between presence heartbeats with --redis: an instance that dies drops out of every member list within two'),
  /**
   * Messages kept per channel for `history` and recovery (`since`); 0 = none, and messages carry no
   * offset. In one process, or with `redis` (there every instance gives the same offsets); not with
   * `redisCluster`. Default 0.
   */
  history: integer(0, 0, 1_000_000, 'messages kept per channel: each message gets an offset and epoch, the history action reads them, a subscribe with since recovers what a client missed; 0 = off (with --redis the history is in Redis and every instance gives the same offsets; not with --redis-cluster)', {
    relation: (o, n) => ((o.history as number) > 0 && o.redisCluster !== null ? `${n('history')} works with ${n('redis')} or in one process, not yet with ${n('redisCluster')}` : undefined),
  }),
  /** Seconds a kept message stays in the history. Default 300. */
  historyTtl: integer(300, 1, 31_536_000, 'seconds a kept message stays in the history'),
  /**
   * Channels this process keeps messages for, in each of its stores (`history` without `redis`, the
   * `expire` cache); past it the channel published to least recently is dropped. Default 10000.
   */
  maxKeptChannels: integer(10_000, 1, 100_000_000, 'channels this process keeps messages for (--history without --redis, the --expire cache), each; past it the channel published to least recently is dropped (its next message starts a new epoch)'),
  /** Bytes of messages this process keeps, in each of those stores; past it, the same eviction. Default 64 MiB. */
  maxKeptBytes: integer(64 * 1024 * 1024, 1024 * 1024, 64 * 1024 * 1024 * 1024, 'bytes of messages this process keeps (--history without --redis, the --expire cache), each; past it the channel published to least recently is dropped'),
  /** Least severe level logged (to stderr): events such as Redis outages, slow consumers cut, refusals. Default `info`. */
  logLevel: choice(LOG_LEVELS, 'info', 'least severe level logged to stderr (JSON lines, or readable lines on a terminal): Redis outages, slow consumers cut, refused upgrades, handler errors, shutdown'),
} as const satisfies OptionSpecs;

/** Everything `createServer` accepts. */
export type ServerOptions = OptionsOf<typeof SERVER_OPTION_SPEC>;

/** The defaults of every option. */
export const DEFAULT_OPTIONS: Readonly<ServerOptions> = defaultsOf(SERVER_OPTION_SPEC);

/** The command-line flag of each option. */
export const FLAGS: Readonly<Record<keyof ServerOptions, string>> = flagsOf(SERVER_OPTION_SPEC);

/** How an error message names an option: as the library takes it (`maxPayload`) or as the command line does (`--max-payload`). */
export type OptionNames = 'options' | 'flags';

/**
 * Merges `input` over the defaults and checks every field.
 * @throws TypeError for a value of the wrong type, RangeError for one out of range; the message names
 *   the option as its caller wrote it: `maxPayload must be an integer from 128 to 16777216 (got -1)`
 *   from the library, `--max-payload must be ...` with `names` = `flags` (the command line).
 */
export function validateOptions(input: Partial<ServerOptions> = {}, names: OptionNames = 'options'): ServerOptions {
  return checkOptions(SERVER_OPTION_SPEC, input, {
    name: (key) => (names === 'flags' ? flagOf(key) : key),
    unknown: (key) => `unknown option "${key}"`,
    typeErrors: true,
  });
}

/** The command-line arguments that start a server with `options` (what the benchmarks spawn it with). */
export const serverArgs = (options: Partial<ServerOptions>): string[] => argsOf(SERVER_OPTION_SPEC, options);

/**
 * What a benchmark turns on that a public server keeps off: `/echo`, the `slow` action on a timer,
 * `/stats` and `/metrics` on the main port, and no frame rate limit (its publishers send tens of
 * thousands a second). The benchmarks and the tests' servers start with these.
 */
export const BENCH_SURFACES = { echo: true, slowIo: 'timer', publicStats: true, rateLimit: 0 } as const satisfies Partial<ServerOptions>;

/**
 * The part of {@link BENCH_SURFACES} that the command-line arguments `argv` do not set themselves (neither
 * the flag nor its `--no-` form): what `--bench` adds.
 */
export function benchSurfaces(argv: readonly string[]): Partial<ServerOptions> {
  const given = (key: string) => argv.some((arg) => arg === FLAGS[key as keyof ServerOptions] || arg === `--no-${FLAGS[key as keyof ServerOptions].slice(2)}` || arg.startsWith(`${FLAGS[key as keyof ServerOptions]}=`));
  return Object.fromEntries(Object.entries(BENCH_SURFACES).filter(([key]) => !given(key)));
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
