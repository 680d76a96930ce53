/**
 * The library's face. The simplest server:
 *
 * ```ts
 * import { createServer } from 'uws-pubsub-bench';
 * const server = createServer({ port: 9000 });
 * await server.listen();
 * ```
 */
import { createBroker } from './broker/index.js';
import { Admission } from './endpoints/admission.js';
import { CLOSE, type ServerContext } from './endpoints/context.js';
import { EchoEndpoint } from './endpoints/echo.js';
import { adminApp, registerHttp } from './endpoints/http.js';
import { PubSubEndpoint } from './endpoints/pubsub.js';
import { loadEngine, skippedLine, type EngineInfo, type TemplatedApp, type us_listen_socket } from './engine.js';
import { validateOptions, type ServerOptions } from './options.js';
import { LoopDelayMonitor } from './loop-delay.js';
import { createSlowIo } from './slow-io/index.js';
import { Stats } from './stats.js';
import { createLog, Throttle, type Logger } from './log.js';
import type { Hooks } from './hooks.js';
import { TokenVerifier } from './identity.js';
import type { Monitor } from './monitors/types.js';
import { MemoryHistory } from './history/memory.js';
import { RedisHistory } from './history/redis.js';
import type { History } from './history/types.js';
import type { Keeper } from './hub/fanout.js';
import { LocalPresence } from './presence/local.js';
import { RedisPresence } from './presence/redis.js';
import type { PresenceStore } from './presence/types.js';

export { DEFAULT_OPTIONS, validateOptions, type ServerOptions } from './options.js';
export { NoEngineError, type EngineInfo, type SkippedBuild } from './engine.js';
export type { Logger, LogLevel } from './log.js';
export type { Monitor, MonitorSink } from './monitors/types.js';
export { pgNotify, pgNotifyChannels, type PgMapping, type PgNotification, type PgNotifyOptions, type PgPublish } from './monitors/pg-notify.js';
export { redisList, type RedisListOptions } from './monitors/redis-list.js';
export { ClientError, Refusal, type HookConnection, type HookIdentity, type Hooks, type UpgradeRequest } from './hooks.js';

/** Where a server listens, and what it connected to. */
export interface ListenInfo {
  /** The port bound (the real one when port 0 was asked for). */
  port: number;
  host: string;
  /** Description of the slow-IO backend (`off` when the `slow` action is off). */
  slowIo: string;
  /** The admin listener's port (on `adminHost`), or null without one. */
  adminPort: number | null;
}

/** A server made by {@link createServer}. */
export interface PubSubServer {
  /** Which native uWS build serves the sockets, and why the others do not. */
  readonly engine: EngineInfo;
  /** The counters behind `/stats`. */
  readonly stats: Stats;
  /** The options in force, defaults filled in. */
  readonly options: ServerOptions;
  /**
   * Connects the slow-IO backend and starts listening. Resolves with the port actually bound (useful
   * with port 0). Rejects when the port is taken or a backend cannot be reached.
   */
  listen(): Promise<ListenInfo>;
  /**
   * Graceful shutdown, losing nothing accepted: stops accepting connections, refuses publishes from now
   * on (`shutting_down`), delivers every publish accepted before to the subscribers connected here (see
   * `Broker.flush`), then sends `goodbye` to every client and closes with 1001 in the same turn, waits
   * up to `shutdownTimeout` ms in all for the sockets to go, then releases the broker and the slow-IO
   * backend.
   */
  close(): Promise<void>;
}

/** What {@link createServer} takes besides its options. */
export interface ServerExtras {
  /**
   * A pino logger (or a child of the application's own) for the server's events; by default one of
   * its own on stderr at `logLevel`, JSON lines unless stderr is a terminal.
   */
  logger?: Logger;
  /** The application's hooks (server/hooks.ts); also taken as `createServer({ ..., hooks })`. */
  hooks?: Hooks;
  /**
   * Sources whose changes become messages (server/monitors/): started by `listen` (which rejects when
   * one cannot connect), stopped first by `close`. Also taken as `createServer({ ..., monitors })`.
   */
  monitors?: Monitor[];
}

/**
 * Creates a pub/sub server with the given options over the defaults.
 * @throws TypeError / RangeError naming the option when one is invalid, and NoEngineError when no
 *   native uWS build loads on this Node and libc (its message names them and what works).
 */
export function createServer(input: Partial<ServerOptions> & { hooks?: Hooks; monitors?: Monitor[] } = {}, extras: ServerExtras = {}): PubSubServer {
  const { hooks: inline, monitors: inlineMonitors, ...rest } = input;
  const monitors = [...(inlineMonitors ?? []), ...(extras.monitors ?? [])];
  const options = validateOptions(rest);
  const hooks: Hooks = { ...inline, ...extras.hooks };
  const log = extras.logger ?? createLog(options.logLevel);
  const { uws, info: engine } = loadEngine(options.maxHeaderSize);
  const stats = new Stats();
  let listenSocket: us_listen_socket | null = null;
  let adminSocket: us_listen_socket | null = null;
  const closeListeners = (): void => {
    for (const socket of [listenSocket, adminSocket]) if (socket) uws.us_listen_socket_close(socket);
    listenSocket = adminSocket = null;
  };
  /**
   * Listens on host:port. uWS sets SO_REUSEPORT unless told otherwise, so a second server on a taken
   * port would start silently and the kernel would split clients between the two; the exclusive flag
   * refuses that. `reusePort` (the --workers supervisor) asks for the sharing on purpose.
   */
  const listenOn = (app: TemplatedApp, host: string, port: number, reusePort: boolean, flags: string) =>
    new Promise<us_listen_socket>((resolve, reject) => {
      const listenExclusive = app.listen as unknown as (host: string, port: number, flags: number, cb: (socket: us_listen_socket | false) => void) => void;
      listenExclusive.call(app, host, port, reusePort ? 0 : LISTEN_EXCLUSIVE_PORT, (socket) => {
        if (socket) resolve(socket);
        else reject(new Error(`cannot listen on ${host}:${port} (${flags}): in use or not allowed`));
      });
    });
  let pubsub: PubSubEndpoint | null = null;
  let echo: EchoEndpoint | null = null;
  let ctx: ServerContext | null = null;
  let loopMonitor: LoopDelayMonitor | null = null;

  async function listen(): Promise<ListenInfo> {
    if (ctx) throw new Error('listen() was already called');
    const slowIo = await createSlowIo(options.slowIo, options.slowIoUrl, options.slowIoPool);
    const historyOptions = options.history > 0 ? { size: options.history, ttlMs: options.historyTtl * 1000 } : null;
    const limits = { maxChannels: options.maxKeptChannels, maxBytes: options.maxKeptBytes };
    const broker = createBroker({ expire: options.expire, redis: options.redis, redisCluster: options.redisCluster, prefix: options.prefix, log, history: historyOptions, limits, redisTimeoutMs: options.redisTimeout });
    const { history, keeper, counters: historyCounters } = createHistory(options);
    const app = uws.App();
    const throttle = new Throttle();
    const admission = new Admission(options, stats, log, throttle);
    const presence = createPresence(options, log);
    /** What a listen that fails gives back: whatever it made or started so far. */
    const giveBack = async (): Promise<void> => {
      await Promise.all(monitors.map((m) => m.stop()));
      closeListeners();
      pubsub?.stop();
      loopMonitor?.stop();
      await Promise.all([slowIo?.close(), broker.close(), presence?.close(), history?.close()]);
    };
    try {
      await presence?.start();
      const checks = { audience: options.jwtAudience, issuer: options.jwtIssuer, clockToleranceS: options.jwtClockTolerance };
      const verifier = options.jwtSecret === null ? null : new TokenVerifier(options.jwtSecret, checks);
      const context: ServerContext = (ctx = { uws, app, options, stats, broker, slowIo, admission, shuttingDown: false, log, throttle, hooks, presence, history, keeper, verifier });
      const endpoint = (pubsub = new PubSubEndpoint(context));
      app.ws('/pubsub', endpoint.behavior());
      if (options.echo) {
        echo = new EchoEndpoint(context);
        app.ws('/echo', echo.behavior());
      }
      const loopDelay = (loopMonitor = new LoopDelayMonitor());
      const statsContext = () => ({
        engine,
        broker: { kind: broker.kind, state: broker.state(), counters: broker.counters() },
        slowIo: slowIo?.description ?? 'off',
        maxConnections: admission.maxConnections,
        loopDelay: loopDelay.current(),
        monitors: Object.fromEntries(monitors.map((m) => [m.name, { state: m.state(), ...m.counters() }])),
        presence: presence ? { kind: presence.kind, ...presence.counters() } : null,
        history: historyCounters?.() ?? null,
      });
      registerHttp(context, statsContext, endpoint);
      listenSocket = await listenOn(app, options.host, options.port, options.reusePort, '--host, --port');
      if (options.adminPort !== null) {
        adminSocket = await listenOn(adminApp(context, statsContext), options.adminHost, options.adminPort, options.reusePort, '--admin-host, --admin-port');
      }
      for (const monitor of monitors) await monitor.start(endpoint, log);
    } catch (err) {
      await giveBack();
      throw err;
    }
    const port = uws.us_socket_local_port(listenSocket as never);
    const adminPort = adminSocket ? uws.us_socket_local_port(adminSocket as never) : null;
    log.info({ host: options.host, port, admin_port: adminPort, engine: engine.description, engine_skipped: skippedLine(engine), broker: broker.kind, slow_io: slowIo?.description ?? 'off', max_connections: admission.maxConnections }, 'listening');
    return { port, host: options.host, slowIo: slowIo?.description ?? 'off', adminPort };
  }

  async function close(): Promise<void> {
    if (!ctx || ctx.shuttingDown) return;
    ctx.shuttingDown = true;
    ctx.log.info({ connections: stats.pubsubConnections + stats.echoConnections }, 'shutdown: refusing new connections and publishes, delivering what was accepted');
    closeListeners();
    // Monitors first: what one took from its source is handed over before the drain below delivers it.
    await Promise.all(monitors.map((m) => m.stop()));
    const deadline = Date.now() + options.shutdownTimeout;
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      pubsub?.drain().then(() => true) ?? true,
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), options.shutdownTimeout))),
    ]);
    clearTimeout(timer);
    if (!drained) ctx.log.warn({ shutdown_timeout_ms: options.shutdownTimeout }, 'shutdown: the broker did not confirm delivery in time; saying goodbye anyway');
    // No await between the drain's last delivery and here: nothing can be delivered in between.
    const endpoints = [pubsub?.sockets, echo?.sockets].filter((sockets) => sockets !== undefined);
    for (const sockets of endpoints) sockets.goodbyeAll('shutdown');
    await waitUntil(() => endpoints.reduce((bytes, sockets) => bytes + sockets.buffered(), 0) === 0, deadline - Date.now());
    const open = endpoints.reduce((count, sockets) => count + sockets.size, 0);
    for (const sockets of endpoints) sockets.endAll(CLOSE.goingAway, 'shutdown');
    // Lingering close: uWS has sent the close frames and goes on reading until each client answers. A
    // process that exits first leaves unread data (a client still sending) in a socket, the kernel then
    // resets it, and a reset can discard the close frame before the client reads it (1006, not 1001).
    if (open > 0) await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(LINGER_MS, deadline - Date.now()))));
    pubsub?.stop();
    loopMonitor?.stop();
    await Promise.all([ctx.broker.close(), ctx.slowIo?.close(), ctx.presence?.close(), ctx.history?.close()]);
    ctx.log.info('shutdown: done');
  }

  return { engine, stats, options, listen, close };
}

/** The presence store the options ask for: none (off), in this process, or through `redis`. */
function createPresence(options: ServerOptions, log: Logger): PresenceStore | null {
  if (!options.presence) return null;
  if (options.redis === null) return new LocalPresence();
  return new RedisPresence({ url: options.redis, prefix: options.prefix, heartbeatMs: options.presenceHeartbeat, log });
}

/**
 * The history the options ask for: none (off), in this process (the hub keeps, so it is the keeper
 * too), or in `redis` (the broker's publish script keeps).
 */
function createHistory(options: ServerOptions): { history: History | null; keeper: Keeper | null; counters?: () => Record<string, number> } {
  if (options.history === 0) return { history: null, keeper: null };
  const ttlMs = options.historyTtl * 1000;
  if (options.redis === null) {
    const memory = new MemoryHistory(options.history, ttlMs, { maxChannels: options.maxKeptChannels, maxBytes: options.maxKeptBytes });
    return { history: memory, keeper: memory, counters: () => ({ ...memory.counters() }) };
  }
  return { history: new RedisHistory({ url: options.redis, prefix: options.prefix, size: options.history, ttlMs }), keeper: null };
}

/** Milliseconds shutdown waits after the close frames (within --shutdown-timeout) for clients to answer. */
const LINGER_MS = 250;

/** uSockets' LIBUS_LISTEN_EXCLUSIVE_PORT. */
const LISTEN_EXCLUSIVE_PORT = 1;

/** Polls `done` every 10 ms until it holds or `timeoutMs` passes. */
async function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}
