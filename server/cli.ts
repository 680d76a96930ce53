#!/usr/bin/env node
/**
 * `node dist/server/cli.js [flags]`: flags -> options -> createServer. Prints the engine and URLs,
 * shuts down gracefully on SIGINT/SIGTERM (a second signal exits at once).
 */
import { readFileSync } from 'node:fs';
import { hideBin } from 'yargs/helpers';
import { commandLine, numeric, usageError as refuseFlags } from './command-line.js';
import { createServer, pgNotifyChannels, redisList, validateOptions, type Monitor, type ServerOptions } from './index.js';
import { loadEngine, skippedLine } from './engine.js';
import { createLog, redactUrl } from './log.js';
import { runSupervisor, SUPERVISED_ENV, WORKER_PORTS, type WorkerPorts } from './supervisor.js';
import { benchSurfaces, SERVER_OPTION_SPEC } from './options.js';
import { optionsFromArgs, withOptions } from './option-spec.js';

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
  const args = await withOptions(commandLine('pubsub-server', '$0 [flags]\n\nThe uWebSockets.js pub/sub server: /pubsub, /health, /publish; /echo, /stats and /metrics when asked.', argv), SERVER_OPTION_SPEC)
    .option('workers', { coerce: numeric, requiresArg: true, default: 1, describe: 'server processes run by one supervisor that restarts any that die; above 1 needs --redis or --redis-cluster' })
    .option('worker-ports', { type: 'string', choices: WORKER_PORTS, default: 'shared', describe: 'with --workers: all on --port (SO_REUSEPORT), or on --port, --port+1, ...' })
    .option('bench', { type: 'boolean', default: false, describe: 'turn on what the benchmarks use and a public server keeps off: --echo, --slow-io timer, --public-stats, --rate-limit 0 (a flag given itself wins)' })
    .option('jwt-secret-file', { type: 'string', describe: 'read --jwt-secret from this file (its first line), so the secret stays out of the process list' })
    .option('pg-notify', { type: 'string', describe: 'PostgreSQL URL to LISTEN at (postgres://...): each NOTIFY on a --pg-notify-channel is published to the subscribers of this instance; listens again after a lost connection' })
    .option('pg-notify-channel', { coerce: strings, requiresArg: true, default: [], describe: 'name[=channel], repeatable: LISTEN on name, publish its payloads (JSON, or else a JSON string) on channel (name itself without =); needs --pg-notify' })
    .option('redis-list', { coerce: strings, requiresArg: true, default: [], describe: 'key=channel, repeatable: publish every item LPUSHed to the list key on channel, oldest first, through the broker; moved to key:processing until published, so a restart loses none (needs --redis)' })
    .parseAsync();
  const options = { ...optionsFromArgs(SERVER_OPTION_SPEC, args), ...(args.bench ? benchSurfaces(argv) : {}) };
  options.jwtSecret = jwtSecret(args.jwtSecret as string | undefined, args.jwtSecretFile as string | undefined);
  const monitorFlags = { pgNotify: args.pgNotify as string | undefined, pgNotifyChannel: args.pgNotifyChannel as string[], redisList: args.redisList as string[] };
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
  return refuseFlags('pubsub-server', message);
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
      await runSupervisor({ workers, ports: workerPorts, port: checked.port, host: checked.host, shutdownTimeout: checked.shutdownTimeout, adminPort: checked.adminPort, argv });
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
  const bridge = redis ? `redis ${redactUrl(redis)}` : redisCluster ? `redis cluster ${redisCluster} (sharded pub/sub)` : null;
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
  // A supervised worker ends with its supervisor: a supervisor killed outright (SIGKILL, a crash) closes
  // the IPC channel, and a worker left behind would hold its port and its clients with no one to stop it.
  if (process.env[SUPERVISED_ENV]) {
    if (!process.connected) void stop('supervisor gone');
    else process.once('disconnect', () => void stop('supervisor gone'));
  }
  if (address.adminPort !== null) console.log(`admin: http://${server.options.adminHost}:${address.adminPort}/stats  /metrics  /health`);
  const echo = server.options.echo ? `  ws://${base}/echo` : '';
  const counters = server.options.publicStats ? '  /stats  /metrics' : '';
  console.log(`listening: ws://${base}/pubsub${echo}  http://${base}/health${counters}  /publish${local}`);
}

void main();
