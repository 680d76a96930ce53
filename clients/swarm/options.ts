/**
 * Swarm options, each declared once in {@link SWARM_OPTION_SPEC} (as the server's are); the type, the
 * defaults, the flags and the validator, whose messages name the flag, are derived from it. Durations on the command line are in seconds (ramp, delay, duration) or milliseconds (the
 * per-request limits), as each name says.
 */

import { checkOptions, choice, decimal, defaultsOf, flagOf, flagsOf, integer, list, onOff, show, text, type OptionSpecs, type OptionsOf } from '../../server/option-spec.js';
import { isThreshold } from './thresholds.js';
import { isStage, parseStages, scheduledClients, stageText } from './stages.js';
import { PROTOCOLS } from './protocols/types.js';
import { CLIENT_SOCKET_DRIVERS } from './sockets/types.js';

export const SCENARIOS = ['echo', 'slow', 'broadcast', 'pubsub', 'crowd'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];
/** Seconds a user scenario's client is given after its connect is due, unless --timeout says otherwise. */
export const USER_SCENARIO_S = 300;

/** What a user scenario's file is named: a module Node (or TypeScript) loads. */
const SCENARIO_FILE = /\.(js|mjs|ts|mts)$/;

/** The built-in scenario `scenario` names, or null for a user scenario's file. */
export function builtInScenario(scenario: string): ScenarioName | null {
  return (SCENARIOS as readonly string[]).includes(scenario) ? (scenario as ScenarioName) : null;
}

/** The scenario as file names and labels show it: a built-in's name, a user scenario's file name without its extension. */
export function scenarioLabel(scenario: string): string {
  return builtInScenario(scenario) ?? (scenario.split(/[\\/]/).at(-1) ?? scenario).replace(SCENARIO_FILE, '');
}

const CHANNEL = /^[A-Za-z0-9_.:@-]{1,160}$/;
const SECONDS = (max: number): string => `must be seconds from 0 to ${max}`;

/** Every option of the swarm, declared once (see server/option-spec.ts); the flag is the kebab-case of the name. */
export const SWARM_OPTION_SPEC = {
  /**
   * Server to load. A bare `ws://host:port` gets the scenario's path (`/echo` for echo, `/pubsub` for the
   * others); a URL with a path is used as given. Several URLs, comma-separated, spread the clients over
   * them (client i to URL i mod n), e.g. server processes on consecutive ports. Default `ws://127.0.0.1:9000`.
   */
  url: text('ws://127.0.0.1:9000', 'server; a bare ws://host:port gets /echo (echo) or /pubsub (others), a URL with a path is used as is; several, comma-separated, share the clients (e.g. --workers on consecutive ports)', {
    rule: (urls) => (urls.split(',').every((url) => isWebSocketUrl(url.trim())) ? undefined : 'must be a ws:// or wss:// URL (or several, comma-separated)'),
  }),
  /**
   * Scenario each client runs: a built-in one by name, or a user scenario, the path of a `.js`, `.mjs`,
   * `.ts` or `.mts` module (docs/scenarios.md). Default `echo`.
   */
  scenario: text('echo', 'echo: the C10k sequence; slow: concurrent slow requests; broadcast: fixed-rate fan-out; pubsub: publish/ack round trips; crowd: all connected at once, echo by ping plus broadcasts that must reach everyone (the C100k sequence); or the path of your own scenario, a .js, .mjs, .ts or .mts module (docs/scenarios.md)', {
    rule: (scenario) => (builtInScenario(scenario) !== null || SCENARIO_FILE.test(scenario)
      ? undefined : `must be one of ${SCENARIOS.join(', ')}, or the path of a .js, .mjs, .ts or .mts file`),
  }),
  /** CSV file (a header line, then a row per client, reused from the top when clients outnumber rows) for a user scenario's `ctx.data`; '' = none. Default ''. */
  data: text('', "CSV file with a header line; client i gets row i mod rows as ctx.data (user scenarios)", {
    relation: (o, n) => (o.data && builtInScenario(o.scenario as string) !== null
      ? `${n('data')} is for a user scenario (a file given to ${n('scenario')}); ${String(o.scenario)} reads no data` : undefined),
  }),
  /**
   * What the clients speak (clients/swarm/protocols/): `contract` (ours), `raw` (any plain WebSocket echo or
   * broadcast server) or `socketio` (Socket.IO v5 over Engine.IO v4, WebSocket transport, rooms as
   * channels). Other than `contract` only for echo and broadcast. Default `contract`.
   */
  protocol: choice(PROTOCOLS, 'contract', "what the clients speak: contract (this server's), raw (any plain WebSocket echo or broadcast server; a bare URL stays /), socketio (Socket.IO v5 over the WebSocket transport, rooms as channels; a bare URL gets /socket.io/); raw and socketio run echo and broadcast only; a user scenario's sockets speak it unless its connect says otherwise", {
    relation: (o, n) => (o.protocol !== 'contract' && !['echo', 'broadcast', null].includes(builtInScenario(o.scenario as string))
      ? `${n('protocol')} ${String(o.protocol)} runs the echo and broadcast scenarios only; ${String(o.scenario)} needs our contract (got ${show(o.protocol)})` : undefined),
  }),
  /** Connections to open. Default 10000. */
  clients: integer(10_000, 1, 1_000_000, 'connections to open'),
  /** Seconds over which connects are spread evenly; 0 opens them all at once. Default 120. */
  ramp: decimal(120, 0, 3600, SECONDS(3600), 'seconds over which the connects are spread; 0 = all at once'),
  /** Seconds each echo/pubsub/crowd client waits before each round. Default 60. */
  delay: decimal(60, 0, 3600, SECONDS(3600), 'seconds each echo/pubsub/crowd client waits before each round'),
  /** Echo/pubsub/crowd rounds per client. Default 3. */
  rounds: integer(3, 1, 10_000, 'echo/pubsub/crowd rounds per client'),
  /** Bytes of padding in each echo/publish payload. Default 0. */
  payload: integer(0, 0, 1_000_000, 'bytes of padding in each echo/publish frame'),
  /** Milliseconds each `slow` request asks for. Default 5000. */
  slowMs: integer(5000, 1, 60_000, 'ms each slow request asks for (slow)'),
  /** `slow` requests each client sends at once. Default 3. */
  requests: integer(3, 1, 1000, 'slow requests each client sends at once (slow)'),
  /** Total publishes per second across all clients (broadcast). Default 100. */
  rate: decimal(100, 0, 10_000_000, 'must be publishes per second, above 0', 'publishes per second, all clients together (broadcast)', { aboveMin: true }),
  /** Seconds of publishing (broadcast). Default 10. */
  duration: decimal(10, 0, 3600, SECONDS(3600), 'seconds of publishing (broadcast)'),
  /**
   * Broadcast: 0 = every client publishes its share of `rate` and subscribes (the sockjs-bench method);
   * K > 0 = the first K clients only publish and the others only subscribe, and every copy is timed at
   * its subscriber from the moment it was due (fanout), e.g. a publisher on one server process and its
   * subscribers on the others. Default 0.
   */
  publishers: integer(0, 0, 1_000_000, 'broadcast: 0 = every client publishes and subscribes; K = the first K clients only publish, the rest only subscribe, and every copy is timed (fanout)', {
    relation: (o, n) => (o.scenario === 'broadcast' && (o.publishers as number) >= (o.clients as number)
      ? `${n('publishers')} must leave at least one subscriber among the ${String(o.clients)} clients (got ${show(o.publishers)})` : undefined),
  }),
  /** Seconds at the start of publishing whose messages are delivered and counted but not timed (broadcast). Default 0. */
  warmup: decimal(0, 0, 3600, SECONDS(3600), 'seconds at the start of publishing whose messages count but are not timed (broadcast)', {
    relation: (o, n) => ((o.warmup as number) > 0 && (o.warmup as number) >= (o.duration as number)
      ? `${n('warmup')} must be shorter than ${n('duration')} (${String(o.duration)} s) (got ${show(o.warmup)})` : undefined),
  }),
  /** Seconds a broadcast client keeps listening after publishing ends; later messages count as lost. Default 2. */
  drain: decimal(2, 0, 600, SECONDS(600), 'seconds to keep listening after publishing; later messages count as lost (broadcast; crowd: then up to --reply-timeout more for the last broadcast)'),
  /** Seconds between the broadcasts that must reach every client (crowd). Default 5. */
  broadcastEvery: decimal(5, 0, 3600, 'must be seconds above 0, at most 3600', 'seconds between the broadcasts client 0 publishes during the rounds (crowd)', {
    aboveMin: true,
    relation: (o, n) => (o.scenario === 'crowd' && broadcastCount({ rounds: o.rounds as number, delay: o.delay as number, broadcastEvery: o.broadcastEvery as number }) < 1
      ? `${n('broadcastEvery')} must fit at least once into ${n('rounds')} x ${n('delay')} (${(o.rounds as number) * (o.delay as number)} s) (got ${show(o.broadcastEvery)})` : undefined),
  }),
  /** Channels the clients are spread over (pubsub); broadcast always uses one. Default 1. */
  channels: integer(1, 1, 1_000_000, 'channels the pubsub clients are spread over'),
  /** Channel name (broadcast) or prefix (pubsub). Default `bench`. */
  channel: text('bench', 'channel (broadcast, crowd) or channel prefix (pubsub)', {
    rule: (channel) => (CHANNEL.test(channel) ? undefined : 'must be 1 to 160 characters of A-Z a-z 0-9 _ - . : @'),
  }),
  /** Worker processes; 0 picks one per 5000 clients. Default 0. */
  workers: integer(0, 0, 64, 'worker processes; 0 = one per 5000 clients (at most 18000 each: 20,000 open files per process)'),
  /**
   * Local addresses the connects come from, client i from address i mod n, on a port the swarm names
   * (FIRST_SOURCE_PORT + i div n; the kernel's choice when that one is taken). Default none: the kernel
   * picks address and port (127.0.0.1 towards loopback), good for up to 28,000 clients per server port.
   */
  sourceAddresses: list('must be a comma-separated list of local IP addresses', isIp, 'comma-separated local addresses to connect from (127.0.0.1,127.0.0.2,...), about 28,000 ports each; each client binds a port the swarm names (from 32768 up); default: the kernel picks address and port'),
  /** A token every client brings (`?token=`); '' = none. Default ''. */
  token: text('', 'a token (JWT) every client brings as ?token=, for a server started with --jwt-secret', { secret: true }),
  /**
   * HS256 secret to sign a token per client with (sub `swarm-<index>`, expiry in 24 h), brought as
   * `?token=`; '' = none. All are signed before the run starts. Default ''.
   */
  tokenSecret: text('', "HS256 secret (the server's --jwt-secret) to sign a token per client with, sub swarm-<index>, all before the run starts", {
    secret: true,
    rule: (secret) => (secret !== '' && Buffer.byteLength(secret) < 32 ? `must be at least 32 bytes for HS256 (got ${Buffer.byteLength(secret)})` : undefined),
    relation: (o, n) => (o.token && o.tokenSecret ? `${n('token')} and ${n('tokenSecret')} exclude each other` : undefined),
  }),
  /**
   * What each client's TCP connection is (clients/swarm/sockets/): `libuv`, Node's TCP handle without a
   * net.Socket around it (about 1.1 KB of the swarm's memory per idle connection), or `net`, a net.Socket
   * (about 3.7 KB). wss:// always takes `net`, as does a Node without the handle's bindings. Default `libuv`.
   */
  clientSockets: choice(CLIENT_SOCKET_DRIVERS, 'libuv', "what a client's TCP connection is: libuv (Node's TCP handle alone, ~1.1 KB of swarm memory per idle connection) or net (a net.Socket, ~3.7 KB); wss:// always uses net"),
  /** Milliseconds a connect may take. Default 10000. */
  connectTimeout: integer(10_000, 1, 600_000, 'ms a connect may take'),
  /** Milliseconds a reply (echo, ack, own message, goodbye) may take; slow replies get `slowMs` more. Default 10000. */
  replyTimeout: integer(10_000, 1, 600_000, 'ms a reply may take (slow requests get --slow-ms more)'),
  /** Seconds after which the whole run stops, closing every socket; 0 derives it from the scenario. Default 0. */
  timeout: decimal(0, 0, 86_400, SECONDS(86_400), `seconds after which the run stops and closes every socket; 0 = what the scenario needs plus a margin (a user scenario: the ramp, ${USER_SCENARIO_S} s and a margin)`),
  /** Process id of the server, to report its CPU and RSS from /proc; 0 = not known. Default 0. */
  serverPid: integer(0, 0, 4_194_304, 'pid of the server process, to report its CPU and RSS from /proc'),
  /**
   * Agents on other machines (`swarm agent`, clients/agents/agent.ts) that run the workers instead of this
   * machine, each its share; 0 = all workers here. Needs `coordinator`. Default 0.
   */
  agents: integer(0, 0, 1000, 'run the workers on this many agents (swarm agent --coordinator <redis>, one per load machine) instead of here; waits --agent-wait s for them'),
  /** Redis URL through which the run and its agents talk (clients/agents/coordinator.ts); '' = none. Default ''. */
  coordinator: text('', 'Redis URL the agents were started with (redis://host:6379)', {
    url: true,
    rule: (url) => (url === '' || /^rediss?:\/\//.test(url) ? undefined : 'must be a redis:// URL'),
    relation: (o, n) => ((o.agents as number) > 0 && !o.coordinator
      ? `${n('coordinator')} must be given with ${n('agents')} (the Redis the agents were started with) (got ${show(o.coordinator)})` : undefined),
  }),
  /** Prefix of every Redis key the run and its agents use, so several swarms can share one Redis. Default `swarm`. */
  coordinatorKey: text('swarm', 'prefix of the Redis keys the run and its agents share', {
    rule: (key) => (/^[\w.:-]{1,100}$/.test(key) ? undefined : 'must be 1 to 100 characters of A-Z a-z 0-9 _ . : -'),
  }),
  /** Seconds a run with agents waits for them to be there. Default 30. */
  agentWait: decimal(30, 0, 3600, SECONDS(3600), 'seconds to wait for --agents agents to be there'),
  /**
   * Seconds of host check before the load starts (see host-check.ts): one thread per core spins and
   * reports the time it did not get a core, then times a fixed piece of work. 0 = none. Default 0; every
   * bench asks for 1.
   */
  hostCheck: decimal(0, 0, 60, SECONDS(60), 'seconds, before the load, of one thread per core spinning to measure how much CPU the host withholds, then timing a fixed piece of work (columns host_*); 0 = skip'),
  /**
   * Figures the run must meet, else it exits 1 (thresholds.ts): `rtt_p99<50`, `checks>=0.99`,
   * `errors==0`, `login_p95<=200`. Given once per threshold (or comma-separated). Default none.
   */
  threshold: list('must be <figure><operator><number>, e.g. rtt_p99<50, checks>=0.99, errors==0, login_p99<=200 (figures: <rtt|connect|slow|fanout|lag|loop|a timing name>_<min|mean|p50|p90|p99|p999|max|count>, checks, checks{name}, errors, errors{kind}, completed, lost)', isThreshold,
    'a figure the run must meet, else it exits 1: <latency or timing>_<min|mean|p50|p90|p99|p999|max|count> in ms (rtt_p99<50, login_p99<=200), checks (share passed, 0-1), checks{name}, errors, errors{kind}, completed, lost; operators < <= > >= == !=; give the flag once per threshold'),
  /**
   * The run as stages (stages.ts): `30s:0->5000` clients at once (closed model: a client whose scenario
   * ends starts it again while the target counts it), or `1m:0->200/s` new clients per second (open
   * model); `60s:5000` goes on from the stage before. They replace --clients and --ramp. Echo and user
   * scenarios. Default none.
   */
  stage: list('must be <duration>:<from>-><to> or <duration>:<to>, clients at once or with /s new clients per second (30s:0->5000, 60s:5000, 1m:0->200/s)', isStage,
    "the run as stages instead of --clients and --ramp: 30s:0->5000 (clients at once: each runs the scenario again while counted), 1m:0->200/s (new clients per second, each once); 60s:5000 goes on from the stage before; once per stage, in order (echo and user scenarios)", {
    rule: (stages) => {
      if (stages.length === 0) return undefined;
      try {
        parseStages(stages);
        return undefined;
      } catch (err) {
        return `must describe a schedule: ${(err as Error).message}`;
      }
    },
    relation: (o, n) => ((o.stage as string[]).length > 0 && !['echo', null].includes(builtInScenario(o.scenario as string))
      ? `${n('stage')} runs the echo scenario and user scenarios; ${String(o.scenario)} has a schedule of its own` : undefined),
  }),
  /** Stop the run as soon as a threshold fails on the figures so far (judged each second). Default false. */
  abortOnFail: onOff(false, 'stop the run as soon as a --threshold fails on the figures so far (judged each second; a figure not measured yet is not judged until the end)', {
    relation: (o, n) => (o.abortOnFail && (o.threshold as string[]).length === 0 ? `${n('abortOnFail')} needs at least one ${n('threshold')}` : undefined),
  }),
} as const satisfies OptionSpecs;

/** Everything `runSwarm` accepts. */
export type SwarmOptions = OptionsOf<typeof SWARM_OPTION_SPEC>;

export const DEFAULT_SWARM_OPTIONS: Readonly<SwarmOptions> = defaultsOf(SWARM_OPTION_SPEC);

/** The command-line flag of each option. */
export const SWARM_FLAGS: Readonly<Record<keyof SwarmOptions, string>> = flagsOf(SWARM_OPTION_SPEC);

/** Open files one worker may use: the hard limit here is 20,000, and a worker needs a few for itself. */
export const MAX_CLIENTS_PER_WORKER = 18_000;
/** Ephemeral ports per (source address, destination): 32768-60999, less a margin. */
export const MAX_CLIENTS_PER_SOURCE = 27_000;
/**
 * With source addresses, client i binds port FIRST_SOURCE_PORT + floor(i / addresses) of its address:
 * at most MAX_CLIENTS_PER_SOURCE ports from the start of the ephemeral range.
 */
export const FIRST_SOURCE_PORT = 32_768;

/** Checks merged options; throws a RangeError naming the flag. Returns the options with derived values. */
export function validateSwarmOptions(input: Partial<SwarmOptions>): SwarmOptions {
  const o = checkOptions(SWARM_OPTION_SPEC, input, { name: flagOf, unknown: (key) => `unknown swarm option: ${key}`, typeErrors: false });
  const fail = (key: keyof SwarmOptions, rule: string): never => {
    throw new RangeError(`${SWARM_FLAGS[key]} ${rule} (got ${show(o[key])})`);
  };

  // Stages replace --clients and --ramp, in their canonical form (workers parse the same texts).
  if (o.stage.length > 0) {
    const schedule = parseStages(o.stage);
    o.stage = schedule.stages.map((stage) => stageText(stage, schedule.model));
    o.clients = scheduledClients(schedule);
    o.ramp = schedule.durationS;
  }
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
  switch (builtInScenario(o.scenario)) {
    case 'echo':
    case 'pubsub':
      return Math.ceil(o.ramp + o.rounds * o.delay + margin);
    case 'crowd':
      return Math.ceil(o.ramp + o.rounds * o.delay + o.drain + margin);
    case 'slow':
      return Math.ceil(o.ramp + o.slowMs / 1000 + margin);
    case 'broadcast':
      return Math.ceil(o.ramp + o.duration + o.drain + margin);
    case null:
      return Math.ceil(o.ramp + USER_SCENARIO_S + margin);
  }
}

/**
 * Broadcasts in a crowd run: one every `broadcastEvery` seconds while the echo rounds run, the k-th due
 * (k - 1/2) x broadcastEvery after the barrier, so all fall inside the rounds.
 */
export function broadcastCount(o: { readonly rounds: number; readonly delay: number; readonly broadcastEvery: number }): number {
  return Math.floor((o.rounds * o.delay) / o.broadcastEvery);
}

function isWebSocketUrl(given: string): boolean {
  try {
    const { protocol } = new URL(given);
    return protocol === 'ws:' || protocol === 'wss:';
  } catch {
    return false;
  }
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
