#!/usr/bin/env node
/**
 * `node dist/server/cli.js [flags]`: flags -> options -> createServer. Prints the engine and URLs,
 * shuts down gracefully on SIGINT/SIGTERM (a second signal exits at once).
 */
import { readFileSync } from 'node:fs';
import { hideBin } from 'yargs/helpers';
import { commandLine, numeric } from './command-line.js';
import { createServer, DEFAULT_OPTIONS, pgNotifyChannels, redisList, validateOptions, type Monitor, type ServerOptions } from './index.js';
import { loadEngine, skippedLine } from './engine.js';
import { createLog, LOG_LEVELS, type LogLevel } from './log.js';
import { runSupervisor, SUPERVISED_ENV, WORKER_PORTS, type WorkerPorts } from './supervisor.js';
import { MAX_SLOW_MS } from './protocol/index.js';
import { DEFAULT_SLOW_IO_URLS, SLOW_IO_BACKENDS } from './options.js';

/** What the command line asks for: one server's options, and how many such processes to supervise. */
interface ParsedArgs {
  options: Partial<ServerOptions>;
  workers: number;
  workerPorts: WorkerPorts;
  /** The monitor flags, checked and turned into monitors after the options (see {@link monitorsOf}). */
  monitorFlags: MonitorFlags;
}

interface MonitorFlags {
  pgNotify?: string;
  pgNotifyChannel: string[];
  redisList: string[];
}

/** `string` flags that may be repeated: always a list of strings. */
const strings = (value: unknown): string[] => [value].flat().filter((v) => v !== undefined).map(String);

/** Parses argv into server options; exits 2 with a message naming the flag on bad input. */
async function parseServerArgs(argv: string[]): Promise<ParsedArgs> {
  const d = DEFAULT_OPTIONS;
  const args = await commandLine('pubsub-server', '$0 [flags]\n\nThe uWebSockets.js pub/sub server: /pubsub, /echo, /health, /stats, /metrics, /publish.', argv)
    .option('port', { coerce: numeric, requiresArg: true, default: d.port, describe: 'TCP port; 0 picks a free one' })
    .option('host', { type: 'string', default: d.host, describe: 'address to listen on' })
    .option('max-payload', { coerce: numeric, requiresArg: true, default: d.maxPayload, describe: 'largest frame and POST /publish body, bytes; a larger frame closes with 1009, a larger body gets 413' })
    .option('max-subscriptions', { coerce: numeric, requiresArg: true, default: d.maxSubscriptions, describe: 'subscriptions per connection; past it: too_many_subscriptions' })
    .option('rate-limit', { coerce: numeric, requiresArg: true, default: d.rateLimit, describe: 'frames per second per connection; 0 = off; past it: rate_limited' })
    .option('max-backpressure', { coerce: numeric, requiresArg: true, default: d.maxBackpressure, describe: 'bytes queued for one connection before it is closed as a slow consumer (goodbye, 1008)' })
    .option('idle-timeout', { coerce: numeric, requiresArg: true, default: d.idleTimeout, describe: 'seconds without traffic before a connection closes; pings are sent automatically; 0 = off, else 8 to 960' })
    .option('expire', { coerce: numeric, requiresArg: true, default: d.expire, describe: 'seconds the last message of a channel is kept for new subscribers; 0 = keep nothing' })
    .option('publish-key', { type: 'string', describe: 'bearer key for POST /publish; without it HTTP publishing is off (403)' })
    .option('client-publish', { type: 'boolean', default: d.clientPublish, describe: 'let WebSocket clients publish on broadcast channels (--no-client-publish: server side only)' })
    .option('slow-io', { type: 'string', choices: SLOW_IO_BACKENDS, default: d.slowIo, describe: `backend of the slow action (at most ${MAX_SLOW_MS} ms a request): timer has no concurrency bound; redis (BLPOP) and postgres (pg_sleep) hold a pooled connection per waiting request, so at most --slow-io-pool wait at once` })
    .option('slow-io-url', { type: 'string', describe: `server of the redis/postgres slow backend (default ${DEFAULT_SLOW_IO_URLS.redis} or ${DEFAULT_SLOW_IO_URLS.postgres})` })
    .option('slow-io-pool', { coerce: numeric, requiresArg: true, default: d.slowIoPool, describe: 'connections of the redis/postgres slow backend: its concurrency bound (keep it under PostgreSQL max_connections)' })
    .option('shutdown-timeout', { coerce: numeric, requiresArg: true, default: d.shutdownTimeout, describe: 'ms that shutdown waits for clients to close after goodbye' })
    .option('redis', { type: 'string', describe: 'bridge instances through this Redis (redis://host:port/db); without it everything stays in this process' })
    .option('redis-cluster', { type: 'string', describe: 'bridge instances through a Redis Cluster with sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7): host:port of one or more of its nodes, comma-separated; instead of --redis' })
    .option('prefix', { type: 'string', default: d.prefix, describe: 'namespace of every Redis channel and cache key (<prefix>:broadcast:news); needs --redis or --redis-cluster' })
    .option('reuse-port', { type: 'boolean', default: d.reusePort, describe: 'listen with SO_REUSEPORT so several processes share the port (set by --workers; off: a taken port is an error)' })
    .option('workers', { coerce: numeric, requiresArg: true, default: 1, describe: 'server processes run by one supervisor that restarts any that die; above 1 needs --redis or --redis-cluster' })
    .option('worker-ports', { type: 'string', choices: WORKER_PORTS, default: 'shared', describe: 'with --workers: all on --port (SO_REUSEPORT), or on --port, --port+1, ...' })
    .option('max-connections', { coerce: numeric, requiresArg: true, describe: 'WebSocket connections at once; past it an upgrade gets 503 (default: the open-file limit less a reserve of 5%, 64 to 1000, for HTTP, Redis and PostgreSQL)' })
    .option('max-connections-per-ip', { coerce: numeric, requiresArg: true, default: d.maxConnectionsPerIp, describe: 'WebSocket connections one source address may hold; past it 429; 0 = no limit' })
    .option('max-json-depth', { coerce: numeric, requiresArg: true, default: d.maxJsonDepth, describe: 'deepest nesting of arrays and objects in a frame or /publish body (the whole frame; a publish takes 2); deeper: too_deep' })
    .option('max-header-size', { coerce: numeric, requiresArg: true, default: d.maxHeaderSize, describe: 'largest WebSocket upgrade request line and headers, bytes; larger: 431' })
    .option('jwt-secret', { type: 'string', describe: `secret of the HS256 tokens (at least 32 bytes) that name a client's user and session: ?token=, Authorization: Bearer or the token cookie; a bad or expired token gets 401; without it every client is anonymous` })
    .option('jwt-secret-file', { type: 'string', describe: 'read --jwt-secret from this file (its first line), so the secret stays out of the process list' })
    .option('require-auth', { type: 'boolean', default: d.requireAuth, describe: '/pubsub and /echo upgrades without a valid token get 401 (needs --jwt-secret)' })
    .option('hook-timeout', { coerce: numeric, requiresArg: true, default: d.hookTimeout, describe: 'ms a hook of the library API may take before it counts as failed (hook_failed)' })
    .option('presence', { type: 'boolean', default: d.presence, describe: "keep who is subscribed to each channel: the presence action and join/leave events (subscribe with join_leave); with --redis across instances" })
    .option('presence-heartbeat', { coerce: numeric, requiresArg: true, default: d.presenceHeartbeat, describe: 'ms between presence heartbeats with --redis: an instance that dies drops out of every member list within two' })
    .option('history', { coerce: numeric, requiresArg: true, default: d.history, describe: 'messages kept per channel: each message gets an offset and epoch, the history action reads them, a subscribe with since recovers what a client missed; 0 = off (with --redis the history is in Redis and every instance gives the same offsets; not with --redis-cluster)' })
    .option('history-ttl', { coerce: numeric, requiresArg: true, default: d.historyTtl, describe: 'seconds a kept message stays in the history' })
    .option('pg-notify', { type: 'string', describe: 'PostgreSQL URL to LISTEN at (postgres://...): each NOTIFY on a --pg-notify-channel is published to the subscribers of this instance; listens again after a lost connection' })
    .option('pg-notify-channel', { coerce: strings, requiresArg: true, default: [], describe: 'name[=channel], repeatable: LISTEN on name, publish its payloads (JSON, or else a JSON string) on channel (name itself without =); needs --pg-notify' })
    .option('redis-list', { coerce: strings, requiresArg: true, default: [], describe: 'key=channel, repeatable: publish every item LPUSHed to the list key on channel, oldest first, through the broker; moved to key:processing until published, so a restart loses none (needs --redis)' })
    .option('log-level', { type: 'string', choices: LOG_LEVELS, default: d.logLevel, describe: 'least severe level logged to stderr (JSON lines, or readable lines on a terminal): Redis outages, slow consumers cut, refused upgrades, handler errors, shutdown' })
    .parseAsync();
  const options = {
    port: args.port as number,
    host: args.host,
    maxPayload: args.maxPayload as number,
    maxSubscriptions: args.maxSubscriptions as number,
    rateLimit: args.rateLimit as number,
    maxBackpressure: args.maxBackpressure as number,
    idleTimeout: args.idleTimeout as number,
    expire: args.expire as number,
    publishKey: args.publishKey ?? null,
    clientPublish: args.clientPublish,
    slowIo: args.slowIo as ServerOptions['slowIo'],
    slowIoUrl: args.slowIoUrl ?? null,
    slowIoPool: args.slowIoPool as number,
    shutdownTimeout: args.shutdownTimeout as number,
    logLevel: args.logLevel as LogLevel,
    redis: args.redis ?? null,
    redisCluster: args.redisCluster ?? null,
    prefix: args.prefix,
    reusePort: args.reusePort,
    maxConnections: (args.maxConnections as number | undefined) ?? null,
    maxConnectionsPerIp: args.maxConnectionsPerIp as number,
    maxJsonDepth: args.maxJsonDepth as number,
    maxHeaderSize: args.maxHeaderSize as number,
    jwtSecret: jwtSecret(args.jwtSecret, args.jwtSecretFile),
    requireAuth: args.requireAuth,
    hookTimeout: args.hookTimeout as number,
    presence: args.presence,
    presenceHeartbeat: args.presenceHeartbeat as number,
    history: args.history as number,
    historyTtl: args.historyTtl as number,
  };
  const monitorFlags = { pgNotify: args.pgNotify, pgNotifyChannel: args.pgNotifyChannel as string[], redisList: args.redisList as string[] };
  return { options, workers: args.workers as number, workerPorts: args.workerPorts as WorkerPorts, monitorFlags };
}

/** The secret from --jwt-secret or the first line of --jwt-secret-file (not both); null without either. */
function jwtSecret(given: string | undefined, file: string | undefined): string | null {
  if (given !== undefined && file !== undefined) usageError('--jwt-secret and --jwt-secret-file exclude each other');
  if (file === undefined) return given ?? null;
  try {
    return readFileSync(file, 'utf8').split('\n')[0].trim();
  } catch (err) {
    usageError(`--jwt-secret-file: cannot read ${file}: ${(err as Error).message}`);
  }
}

/** The monitors the flags ask for; exits 2 on a flag that cannot work. */
function monitorsOf(flags: MonitorFlags, options: ServerOptions): Monitor[] {
  const monitors: Monitor[] = [];
  if (flags.pgNotifyChannel.length > 0 && !flags.pgNotify) usageError('--pg-notify-channel needs --pg-notify URL');
  if (flags.pgNotify && flags.pgNotifyChannel.length === 0) usageError('--pg-notify needs at least one --pg-notify-channel name[=channel]');
  try {
    if (flags.pgNotify) monitors.push(pgNotifyChannels(flags.pgNotify, flags.pgNotifyChannel));
    for (const pair of flags.redisList) {
      const at = pair.indexOf('=');
      if (at <= 0 || at === pair.length - 1) usageError(`--redis-list: expected key=channel, got ${JSON.stringify(pair)}`);
      if (!options.redis) usageError('--redis-list needs --redis URL (the list is read there, and its items are published through it)');
      monitors.push(redisList({ url: options.redis, key: pair.slice(0, at), channel: pair.slice(at + 1) }));
    }
  } catch (err) {
    usageError((err as Error).message.replace(/^pgNotify: /, '--pg-notify-channel: ').replace(/^redisList: /, '--redis-list: '));
  }
  return monitors;
}

/** Exits 2 with the message, as for any bad flag. */
function usageError(message: string): never {
  console.error(`pubsub-server: ${message}\nRun with --help for the flags.`);
  process.exit(2);
}

async function main(): Promise<void> {
  const argv = hideBin(process.argv);
  const parsed = await parseServerArgs(argv);
  const { options, workerPorts } = parsed;
  // A worker of a supervisor never supervises, whatever flags it inherited.
  const workers = process.env[SUPERVISED_ENV] ? 1 : parsed.workers;
  if (typeof workers !== 'number' || !Number.isInteger(workers) || workers < 1 || workers > 64) {
    usageError(`--workers must be an integer from 1 to 64 (got ${JSON.stringify(workers)})`);
  }
  let checked: ServerOptions;
  try {
    checked = validateOptions(options, 'flags');
  } catch (err) {
    usageError((err as Error).message);
  }
  const monitors = monitorsOf(parsed.monitorFlags, checked);
  // Before any worker is forked: a supervisor of processes that can never start would only restart them.
  try {
    loadEngine(checked.maxHeaderSize);
  } catch (err) {
    console.error(`pubsub-server: ${(err as Error).message}`);
    process.exit(2);
  }
  if (workers > 1) {
    if (checked.redis === null && checked.redisCluster === null) {
      usageError('--workers above 1 needs --redis or --redis-cluster: without it each process would have channels of its own');
    }
    try {
      await runSupervisor({ workers, ports: workerPorts, port: checked.port, host: checked.host, shutdownTimeout: checked.shutdownTimeout, argv });
    } catch (err) {
      console.error(`pubsub-server: ${(err as Error).message}`);
      process.exit(1);
    }
    process.exit(0);
  }
  let server;
  const log = createLog(checked.logLevel);
  try {
    server = createServer(checked, { logger: log, monitors });
  } catch (err) {
    console.error(`pubsub-server: ${(err as Error).message}`);
    process.exit(2);
  }
  console.log(`engine: ${server.engine.description}`);
  const skipped = skippedLine(server.engine);
  if (skipped) console.log(`engine not used: ${skipped}`);
  let address;
  try {
    address = await server.listen();
  } catch (err) {
    console.error(`pubsub-server: ${(err as Error).message}`);
    process.exit(1);
  }
  const base = `${address.host}:${address.port}`;
  const local = address.host === '0.0.0.0' ? ` (every interface; from this machine ws://127.0.0.1:${address.port})` : '';
  console.log(`slow io: ${address.slowIo}`);
  const { redis, redisCluster, prefix } = server.options;
  const bridge = redis ? `redis ${redis}` : redisCluster ? `redis cluster ${redisCluster} (sharded pub/sub)` : null;
  console.log(`broker: ${bridge ? `${bridge}${prefix ? ` prefix ${prefix}` : ''}` : 'local (in memory)'}`);
  // The handlers go in before the listening line: whoever reads that line may signal at once.
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'signal: shutting down');
    await server.close();
    process.exit(0);
  };
  // A supervised worker leaves SIGINT to its supervisor: Ctrl-C in a terminal reaches every process of
  // the group, and the supervisor's SIGTERM that follows would otherwise be a second signal, which
  // exits at once instead of saying goodbye.
  process.on('SIGINT', () => (process.env[SUPERVISED_ENV] ? undefined : void stop('SIGINT')));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  console.log(`listening: ws://${base}/pubsub  ws://${base}/echo  http://${base}/health  /stats  /metrics  /publish${local}`);
}

void main();
