/**
 * Swarm options: one typed defaults object and one validator whose messages name the flag, as for the
 * server. Durations on the command line are in seconds (ramp, delay, duration) or milliseconds (the
 * per-request limits), as each name says.
 */

import { PROTOCOLS, type ProtocolName } from './protocols/types.js';

export const SCENARIOS = ['echo', 'slow', 'broadcast', 'pubsub', 'crowd'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** Everything `runSwarm` accepts. */
export interface SwarmOptions {
  /**
   * Server to load. A bare `ws://host:port` gets the scenario's path (`/echo` for echo, `/pubsub` for the
   * others); a URL with a path is used as given. Several URLs, comma-separated, spread the clients over
   * them (client i to URL i mod n), e.g. server processes on consecutive ports. Default `ws://127.0.0.1:9000`.
   */
  url: string;
  /** Scenario each client runs. Default `echo`. */
  scenario: ScenarioName;
  /**
   * What the clients speak (clients/protocols/): `contract` (ours), `raw` (any plain WebSocket echo or
   * broadcast server) or `socketio` (Socket.IO v5 over Engine.IO v4, WebSocket transport, rooms as
   * channels). Other than `contract` only for echo and broadcast. Default `contract`.
   */
  protocol: ProtocolName;
  /** Connections to open. Default 10000. */
  clients: number;
  /** Seconds over which connects are spread evenly; 0 opens them all at once. Default 120. */
  ramp: number;
  /** Seconds each echo/pubsub/crowd client waits before each round. Default 60. */
  delay: number;
  /** Echo/pubsub/crowd rounds per client. Default 3. */
  rounds: number;
  /** Bytes of padding in each echo/publish payload. Default 0. */
  payload: number;
  /** Milliseconds each `slow` request asks for. Default 5000. */
  slowMs: number;
  /** `slow` requests each client sends at once. Default 3. */
  requests: number;
  /** Total publishes per second across all clients (broadcast). Default 100. */
  rate: number;
  /** Seconds of publishing (broadcast). Default 10. */
  duration: number;
  /**
   * Broadcast: 0 = every client publishes its share of `rate` and subscribes (the sockjs-bench method);
   * K > 0 = the first K clients only publish and the others only subscribe, and every copy is timed at
   * its subscriber from the moment it was due (fanout), e.g. a publisher on one server process and its
   * subscribers on the others. Default 0.
   */
  publishers: number;
  /** Seconds at the start of publishing whose messages are delivered and counted but not timed (broadcast). Default 0. */
  warmup: number;
  /** Seconds a broadcast client keeps listening after publishing ends; later messages count as lost. Default 2. */
  drain: number;
  /** Seconds between the broadcasts that must reach every client (crowd). Default 5. */
  broadcastEvery: number;
  /** Channels the clients are spread over (pubsub); broadcast always uses one. Default 1. */
  channels: number;
  /** Channel name (broadcast) or prefix (pubsub). Default `bench`. */
  channel: string;
  /** Worker processes; 0 picks one per 5000 clients. Default 0. */
  workers: number;
  /**
   * Local addresses the connects come from, client i from address i mod n, on a port the swarm names
   * (FIRST_SOURCE_PORT + i div n; the kernel's choice when that one is taken). Default none: the kernel
   * picks address and port (127.0.0.1 towards loopback), good for up to 28,000 clients per server port.
   */
  sourceAddresses: string[];
  /** A token every client brings (`?token=`); '' = none. Default ''. */
  token: string;
  /**
   * HS256 secret to sign a token per client with (sub `swarm-<index>`, expiry in 24 h), brought as
   * `?token=`; '' = none. All are signed before the run starts. Default ''.
   */
  tokenSecret: string;
  /** Milliseconds a connect may take. Default 10000. */
  connectTimeout: number;
  /** Milliseconds a reply (echo, ack, own message, goodbye) may take; slow replies get `slowMs` more. Default 10000. */
  replyTimeout: number;
  /** Seconds after which the whole run stops, closing every socket; 0 derives it from the scenario. Default 0. */
  timeout: number;
  /** Process id of the server, to report its CPU and RSS from /proc; 0 = not known. Default 0. */
  serverPid: number;
  /**
   * Agents on other machines (`swarm agent`, clients/agent.ts) that run the workers instead of this
   * machine, each its share; 0 = all workers here. Needs `coordinator`. Default 0.
   */
  agents: number;
  /** Redis URL through which the run and its agents talk (clients/coordinator.ts); '' = none. Default ''. */
  coordinator: string;
  /** Prefix of every Redis key the run and its agents use, so several swarms can share one Redis. Default `swarm`. */
  coordinatorKey: string;
  /** Seconds a run with agents waits for them to be there. Default 30. */
  agentWait: number;
  /**
   * Seconds of host check before the load starts (see host-check.ts): one thread per core spins and
   * reports the time it did not get a core, then times a fixed piece of work. 0 = none. Default 0; every
   * bench asks for 1.
   */
  hostCheck: number;
}

export const DEFAULT_SWARM_OPTIONS: Readonly<SwarmOptions> = Object.freeze({
  url: 'ws://127.0.0.1:9000',
  scenario: 'echo',
  protocol: 'contract',
  clients: 10_000,
  ramp: 120,
  delay: 60,
  rounds: 3,
  payload: 0,
  slowMs: 5000,
  requests: 3,
  rate: 100,
  duration: 10,
  publishers: 0,
  warmup: 0,
  drain: 2,
  broadcastEvery: 5,
  channels: 1,
  channel: 'bench',
  workers: 0,
  sourceAddresses: [],
  token: '',
  tokenSecret: '',
  connectTimeout: 10_000,
  replyTimeout: 10_000,
  timeout: 0,
  serverPid: 0,
  agents: 0,
  coordinator: '',
  coordinatorKey: 'swarm',
  agentWait: 30,
  hostCheck: 0,
});

/** The command-line flag of each option. */
export const SWARM_FLAGS: Readonly<Record<keyof SwarmOptions, string>> = {
  url: '--url',
  scenario: '--scenario',
  protocol: '--protocol',
  clients: '--clients',
  ramp: '--ramp',
  delay: '--delay',
  rounds: '--rounds',
  payload: '--payload',
  slowMs: '--slow-ms',
  requests: '--requests',
  rate: '--rate',
  duration: '--duration',
  publishers: '--publishers',
  warmup: '--warmup',
  drain: '--drain',
  broadcastEvery: '--broadcast-every',
  channels: '--channels',
  channel: '--channel',
  workers: '--workers',
  sourceAddresses: '--source-addresses',
  token: '--token',
  tokenSecret: '--token-secret',
  connectTimeout: '--connect-timeout',
  replyTimeout: '--reply-timeout',
  timeout: '--timeout',
  serverPid: '--server-pid',
  agents: '--agents',
  coordinator: '--coordinator',
  coordinatorKey: '--coordinator-key',
  agentWait: '--agent-wait',
  hostCheck: '--host-check',
};

/** Open files one worker may use: the hard limit here is 20,000, and a worker needs a few for itself. */
export const MAX_CLIENTS_PER_WORKER = 18_000;
/** Ephemeral ports per (source address, destination): 32768-60999, less a margin. */
export const MAX_CLIENTS_PER_SOURCE = 27_000;
/**
 * With source addresses, client i binds port FIRST_SOURCE_PORT + floor(i / addresses) of its address:
 * at most MAX_CLIENTS_PER_SOURCE ports from the start of the ephemeral range.
 */
export const FIRST_SOURCE_PORT = 32_768;

const CHANNEL = /^[A-Za-z0-9_.:@-]{1,160}$/;

/** Checks merged options; throws a RangeError naming the flag. Returns the options with derived values. */
export function validateSwarmOptions(input: Partial<SwarmOptions>): SwarmOptions {
  for (const key of Object.keys(input)) {
    if (!(key in DEFAULT_SWARM_OPTIONS)) throw new TypeError(`unknown swarm option: ${key}`);
  }
  const o: SwarmOptions = { ...DEFAULT_SWARM_OPTIONS, ...input };
  const fail = (key: keyof SwarmOptions, rule: string): never => {
    throw new RangeError(`${SWARM_FLAGS[key]} ${rule} (got ${JSON.stringify(o[key])})`);
  };
  const integer = (key: keyof SwarmOptions, min: number, max = Number.MAX_SAFE_INTEGER): void => {
    const value = o[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      fail(key, `must be an integer from ${min} to ${max}`);
    }
  };
  const seconds = (key: keyof SwarmOptions, max: number): void => {
    const value = o[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > max) fail(key, `must be seconds from 0 to ${max}`);
  };

  if (typeof o.url !== 'string') fail('url', 'must be a ws:// or wss:// URL');
  for (const each of o.url.split(',')) {
    let url: URL | null = null;
    try {
      url = new URL(each.trim());
    } catch {
      fail('url', 'must be a ws:// or wss:// URL (or several, comma-separated)');
    }
    if (url && url.protocol !== 'ws:' && url.protocol !== 'wss:') fail('url', 'must be a ws:// or wss:// URL (or several, comma-separated)');
  }
  if (!SCENARIOS.includes(o.scenario)) fail('scenario', `must be one of ${SCENARIOS.join(', ')}`);
  if (!PROTOCOLS.includes(o.protocol)) fail('protocol', `must be one of ${PROTOCOLS.join(', ')}`);
  if (o.protocol !== 'contract' && o.scenario !== 'echo' && o.scenario !== 'broadcast') {
    fail('protocol', `${o.protocol} runs the echo and broadcast scenarios only; ${o.scenario} needs our contract`);
  }
  integer('clients', 1, 1_000_000);
  seconds('ramp', 3600);
  seconds('delay', 3600);
  integer('rounds', 1, 10_000);
  integer('payload', 0, 1_000_000);
  integer('slowMs', 1, 60_000);
  integer('requests', 1, 1000);
  if (typeof o.rate !== 'number' || !Number.isFinite(o.rate) || o.rate <= 0 || o.rate > 10_000_000) fail('rate', 'must be publishes per second, above 0');
  seconds('duration', 3600);
  seconds('drain', 600);
  integer('publishers', 0, 1_000_000);
  if (o.scenario === 'broadcast' && o.publishers >= o.clients) fail('publishers', `must leave at least one subscriber among the ${o.clients} clients`);
  seconds('warmup', 3600);
  if (o.warmup > 0 && o.warmup >= o.duration) fail('warmup', `must be shorter than --duration (${o.duration} s)`);
  if (typeof o.broadcastEvery !== 'number' || !Number.isFinite(o.broadcastEvery) || o.broadcastEvery <= 0 || o.broadcastEvery > 3600) {
    fail('broadcastEvery', 'must be seconds above 0, at most 3600');
  }
  if (o.scenario === 'crowd' && broadcastCount(o) < 1) fail('broadcastEvery', `must fit at least once into --rounds x --delay (${o.rounds * o.delay} s)`);
  integer('channels', 1, 1_000_000);
  if (typeof o.channel !== 'string' || !CHANNEL.test(o.channel)) fail('channel', 'must be 1 to 160 characters of A-Z a-z 0-9 _ - . : @');
  integer('workers', 0, 64);
  if (!Array.isArray(o.sourceAddresses) || o.sourceAddresses.some((a) => typeof a !== 'string' || !isIp(a))) {
    fail('sourceAddresses', 'must be a comma-separated list of local IP addresses');
  }
  if (typeof o.token !== 'string') fail('token', 'must be a string');
  if (typeof o.tokenSecret !== 'string') fail('tokenSecret', 'must be a string');
  // Secrets are not quoted back: the messages say what is wrong without them.
  if (o.token && o.tokenSecret) throw new RangeError(`${SWARM_FLAGS.token} and ${SWARM_FLAGS.tokenSecret} exclude each other`);
  if (o.tokenSecret && Buffer.byteLength(o.tokenSecret) < 32) throw new RangeError(`${SWARM_FLAGS.tokenSecret} must be at least 32 bytes for HS256 (got ${Buffer.byteLength(o.tokenSecret)})`);
  integer('connectTimeout', 1, 600_000);
  integer('replyTimeout', 1, 600_000);
  seconds('timeout', 86_400);
  integer('serverPid', 0, 4_194_304);
  seconds('hostCheck', 60);
  integer('agents', 0, 1000);
  if (typeof o.coordinator !== 'string' || (o.coordinator !== '' && !/^rediss?:\/\//.test(o.coordinator))) fail('coordinator', 'must be a redis:// URL');
  if (o.agents > 0 && !o.coordinator) fail('coordinator', 'must be given with --agents (the Redis the agents were started with)');
  if (typeof o.coordinatorKey !== 'string' || !/^[\w.:-]{1,100}$/.test(o.coordinatorKey)) fail('coordinatorKey', 'must be 1 to 100 characters of A-Z a-z 0-9 _ . : -');
  seconds('agentWait', 3600);

  // With agents, every agent runs as many workers as every other.
  const needed = o.workers || Math.max(1, Math.ceil(o.clients / 5000));
  const workers = o.agents > 0 ? Math.ceil(Math.max(needed, o.agents) / o.agents) * o.agents : needed;
  if (Math.ceil(o.clients / workers) > MAX_CLIENTS_PER_WORKER) {
    fail('workers', `must give each worker at most ${MAX_CLIENTS_PER_WORKER} clients (one process may hold 20,000 open files)`);
  }
  if (Math.ceil(o.clients / Math.max(1, o.sourceAddresses.length)) > MAX_CLIENTS_PER_SOURCE) {
    fail('sourceAddresses', `must give each address at most ${MAX_CLIENTS_PER_SOURCE} clients (ephemeral ports 32768-60999); add 127.0.0.2, 127.0.0.3, ...`);
  }
  return { ...o, workers, timeout: o.timeout || defaultTimeout(o) };
}

/** Seconds the scenario needs when nothing goes wrong, plus a margin for replies and closes. */
function defaultTimeout(o: SwarmOptions): number {
  const margin = 30 + o.replyTimeout / 1000;
  switch (o.scenario) {
    case 'echo':
    case 'pubsub':
      return Math.ceil(o.ramp + o.rounds * o.delay + margin);
    case 'crowd':
      return Math.ceil(o.ramp + o.rounds * o.delay + o.drain + margin);
    case 'slow':
      return Math.ceil(o.ramp + o.slowMs / 1000 + margin);
    case 'broadcast':
      return Math.ceil(o.ramp + o.duration + o.drain + margin);
  }
}

/**
 * Broadcasts in a crowd run: one every `broadcastEvery` seconds while the echo rounds run, the k-th due
 * (k - 1/2) x broadcastEvery after the barrier, so all fall inside the rounds.
 */
export function broadcastCount(o: Pick<SwarmOptions, 'rounds' | 'delay' | 'broadcastEvery'>): number {
  return Math.floor((o.rounds * o.delay) / o.broadcastEvery);
}

function isIp(address: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(address) || address.includes(':');
}

/** The URLs a scenario connects to, client i to the (i mod n)-th. */
export function scenarioUrls(options: SwarmOptions): string[] {
  return options.url.split(',').map((url) => withScenarioPath(url.trim(), options));
}

/** The URL a scenario connects to (the first, when there are several), for display. */
export function scenarioUrl(options: SwarmOptions): string {
  const urls = scenarioUrls(options);
  return urls.length === 1 ? urls[0] : `${urls[0]} (+${urls.length - 1} more)`;
}

/** The given URL, or the scenario's path on a bare host (the protocol's: /echo?rounds=N, /pubsub, /socket.io/...). */
function withScenarioPath(given: string, options: SwarmOptions): string {
  const url = new URL(given);
  const scenario = options.scenario === 'echo' ? 'echo' : 'broadcast';
  if (options.protocol === 'contract') {
    if (url.pathname === '/' || url.pathname === '') url.pathname = scenario === 'echo' ? '/echo' : '/pubsub';
    if (scenario === 'echo' && !url.searchParams.has('rounds')) url.searchParams.set('rounds', String(options.rounds));
  } else if (options.protocol === 'socketio') {
    if (url.pathname === '/' || url.pathname === '') url.pathname = '/socket.io/';
    if (!url.searchParams.has('EIO')) url.searchParams.set('EIO', '4');
    if (!url.searchParams.has('transport')) url.searchParams.set('transport', 'websocket');
  }
  return url.toString();
}
