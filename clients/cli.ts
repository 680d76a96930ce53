#!/usr/bin/env node
/**
 * `node dist/clients/cli.js [flags]` (`make swarm ARGS="..."`): the swarm against any server that speaks
 * the contract. Prints progress to stderr, the summary to stdout, and with `--out` writes CSVs. Exits 0 when
 * every client completed, 1 when some did not, 2 on a bad flag, 130 when Ctrl-C stopped it (after the
 * summary and the CSVs of what was measured, marked interrupted).
 */
import { commandLine, numeric } from '../server/command-line.js';
import { Swarm } from './engine.js';
import { catchInterrupts, interruptible } from './interrupt.js';
import { DEFAULT_SWARM_OPTIONS as d, SCENARIOS, validateSwarmOptions, type SwarmOptions } from './options.js';
import { PROTOCOLS } from './protocols/types.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { findMax } from './find-max.js';
import { attachCsv, hostColumns, stamp, writeCsv, type Row } from './output/csv.js';
import { attachProgress } from './output/progress.js';
import { summaryLines } from './output/summary.js';

if (process.argv[2] === 'agent') {
  const { runAgent } = await import('./agent-cli.js');
  await runAgent(process.argv.slice(3));
  process.exit(0);
}

const args = await commandLine('swarm', '$0 [flags]\n\nOpens many WebSocket clients against a server that speaks the pub/sub contract and measures it.\nExample: $0 --url ws://127.0.0.1:9000 --clients 10000 --ramp 2 --delay 5')
  .option('url', { type: 'string', default: d.url, describe: 'server; a bare ws://host:port gets /echo (echo) or /pubsub (others), a URL with a path is used as is; several, comma-separated, share the clients (e.g. --workers on consecutive ports)' })
  .option('scenario', { type: 'string', choices: SCENARIOS, default: d.scenario, describe: 'echo: the C10k sequence; slow: concurrent slow requests; broadcast: fixed-rate fan-out; pubsub: publish/ack round trips; crowd: all connected at once, echo by ping plus broadcasts that must reach everyone (the C100k sequence)' })
  .option('protocol', { type: 'string', choices: PROTOCOLS, default: d.protocol, describe: 'what the clients speak: contract (this server\'s), raw (any plain WebSocket echo or broadcast server; a bare URL stays /), socketio (Socket.IO v5 over the WebSocket transport, rooms as channels; a bare URL gets /socket.io/); raw and socketio run echo and broadcast only' })
  .option('clients', { coerce: numeric, requiresArg: true, default: d.clients, describe: 'connections to open' })
  .option('ramp', { coerce: numeric, requiresArg: true, default: d.ramp, describe: 'seconds over which the connects are spread; 0 = all at once' })
  .option('delay', { coerce: numeric, requiresArg: true, default: d.delay, describe: 'seconds each echo/pubsub/crowd client waits before each round' })
  .option('rounds', { coerce: numeric, requiresArg: true, default: d.rounds, describe: 'echo/pubsub/crowd rounds per client' })
  .option('payload', { coerce: numeric, requiresArg: true, default: d.payload, describe: 'bytes of padding in each echo/publish frame' })
  .option('slow-ms', { coerce: numeric, requiresArg: true, default: d.slowMs, describe: 'ms each slow request asks for (slow)' })
  .option('requests', { coerce: numeric, requiresArg: true, default: d.requests, describe: 'slow requests each client sends at once (slow)' })
  .option('rate', { coerce: numeric, requiresArg: true, default: d.rate, describe: 'publishes per second, all clients together (broadcast)' })
  .option('duration', { coerce: numeric, requiresArg: true, default: d.duration, describe: 'seconds of publishing (broadcast)' })
  .option('publishers', { coerce: numeric, requiresArg: true, default: d.publishers, describe: 'broadcast: 0 = every client publishes and subscribes; K = the first K clients only publish, the rest only subscribe, and every copy is timed (fanout)' })
  .option('warmup', { coerce: numeric, requiresArg: true, default: d.warmup, describe: 'seconds at the start of publishing whose messages count but are not timed (broadcast)' })
  .option('drain', { coerce: numeric, requiresArg: true, default: d.drain, describe: 'seconds to keep listening after publishing; later messages count as lost (broadcast, crowd)' })
  .option('broadcast-every', { coerce: numeric, requiresArg: true, default: d.broadcastEvery, describe: 'seconds between the broadcasts client 0 publishes during the rounds (crowd)' })
  .option('channels', { coerce: numeric, requiresArg: true, default: d.channels, describe: 'channels the pubsub clients are spread over' })
  .option('channel', { type: 'string', default: d.channel, describe: 'channel (broadcast, crowd) or channel prefix (pubsub)' })
  .option('workers', { coerce: numeric, requiresArg: true, default: d.workers, describe: 'worker processes; 0 = one per 5000 clients (at most 18000 each: 20,000 open files per process)' })
  .option('source-addresses', { type: 'string', default: '', describe: 'comma-separated local addresses to connect from (127.0.0.1,127.0.0.2,...), about 28,000 ports each; each client binds a port the swarm names (from 32768 up); default: the kernel picks address and port' })
  .option('token', { type: 'string', default: d.token, describe: 'a token (JWT) every client brings as ?token=, for a server started with --jwt-secret' })
  .option('token-secret', { type: 'string', default: d.tokenSecret, describe: "HS256 secret (the server's --jwt-secret) to sign a token per client with, sub swarm-<index>, all before the run starts" })
  .option('connect-timeout', { coerce: numeric, requiresArg: true, default: d.connectTimeout, describe: 'ms a connect may take' })
  .option('reply-timeout', { coerce: numeric, requiresArg: true, default: d.replyTimeout, describe: 'ms a reply may take (slow requests get --slow-ms more)' })
  .option('timeout', { coerce: numeric, requiresArg: true, default: d.timeout, describe: 'seconds after which the run stops and closes every socket; 0 = what the scenario needs plus a margin' })
  .option('server-pid', { coerce: numeric, requiresArg: true, default: d.serverPid, describe: 'pid of the server process, to report its CPU and RSS from /proc' })
  .option('host-check', { coerce: numeric, requiresArg: true, default: d.hostCheck, describe: 'seconds, before the load, of one thread per core spinning to measure how much CPU the host withholds, then timing a fixed piece of work (columns host_*); 0 = skip' })
  .option('out', { type: 'string', describe: 'directory for CSVs (<name>-timeline.csv, <name>-summary.csv, history.csv); none without it' })
  .option('name', { type: 'string', describe: 'file name prefix of the CSVs (default swarm-<scenario>-<stamp>)' })
  .option('label', { type: 'string', default: 'server', describe: 'what the summary calls the server under test' })
  .option('agents', { coerce: numeric, requiresArg: true, default: d.agents, describe: 'run the workers on this many agents (swarm agent --coordinator <redis>, one per load machine) instead of here; waits --agent-wait s for them' })
  .option('coordinator', { type: 'string', default: d.coordinator, describe: 'Redis URL the agents were started with (redis://host:6379)' })
  .option('coordinator-key', { type: 'string', default: d.coordinatorKey, describe: 'prefix of the Redis keys the run and its agents share' })
  .option('agent-wait', { coerce: numeric, requiresArg: true, default: d.agentWait, describe: 'seconds to wait for --agents agents to be there' })
  .option('find-max', { type: 'boolean', default: false, describe: 'run again and again with --step-factor times more clients, from --clients, until p99 passes --p99-limit, a client fails or a copy is lost; print the largest count that held and the saturated side of each step' })
  .option('p99-limit', { coerce: numeric, requiresArg: true, default: 50, describe: 'ms: the p99 (echo and broadcast round trip; fanout with --publishers) a --find-max step must stay within' })
  .option('step-factor', { coerce: numeric, requiresArg: true, default: 2, describe: 'clients of a --find-max step over those of the one before (above 1)' })
  .option('max-clients', { coerce: numeric, requiresArg: true, default: 100_000, describe: 'no --find-max step goes beyond this many clients' })
  .check((a) => {
    if (!a.findMax) return true;
    if (a.scenario !== 'echo' && a.scenario !== 'broadcast') throw new Error(`--find-max runs the echo and broadcast scenarios (got --scenario ${String(a.scenario)})`);
    if (typeof a.p99Limit !== 'number' || !(a.p99Limit > 0)) throw new Error(`--p99-limit must be ms above 0 (got ${String(a.p99Limit)})`);
    if (typeof a.stepFactor !== 'number' || !(a.stepFactor > 1)) throw new Error(`--step-factor must be above 1 (got ${String(a.stepFactor)})`);
    if (typeof a.maxClients !== 'number' || !Number.isInteger(a.maxClients) || a.maxClients < 1) throw new Error(`--max-clients must be a whole number above 0 (got ${String(a.maxClients)})`);
    return true;
  })
  .parseAsync();

const options: Partial<SwarmOptions> = {
  url: args.url,
  scenario: args.scenario as SwarmOptions['scenario'],
  protocol: args.protocol as SwarmOptions['protocol'],
  clients: args.clients as number,
  ramp: args.ramp as number,
  delay: args.delay as number,
  rounds: args.rounds as number,
  payload: args.payload as number,
  slowMs: args.slowMs as number,
  requests: args.requests as number,
  rate: args.rate as number,
  duration: args.duration as number,
  publishers: args.publishers as number,
  warmup: args.warmup as number,
  drain: args.drain as number,
  broadcastEvery: args.broadcastEvery as number,
  channels: args.channels as number,
  channel: args.channel,
  workers: args.workers as number,
  sourceAddresses: args.sourceAddresses.split(',').map((a) => a.trim()).filter(Boolean),
  token: args.token,
  tokenSecret: args.tokenSecret,
  connectTimeout: args.connectTimeout as number,
  replyTimeout: args.replyTimeout as number,
  timeout: args.timeout as number,
  serverPid: args.serverPid as number,
  hostCheck: args.hostCheck as number,
  agents: args.agents as number,
  coordinator: args.coordinator,
  coordinatorKey: args.coordinatorKey,
  agentWait: args.agentWait as number,
};

if (args.findMax) {
  try {
    validateSwarmOptions(options);
  } catch (err) {
    console.error(`swarm: ${(err as Error).message}\nRun with --help for the flags.`);
    process.exit(2);
  }
  catchInterrupts();
  const name = args.name ?? `find-max-${options.scenario}-${stamp()}`;
  const rows: Row[] = [];
  const result = await findMax(options, {
    p99LimitMs: args.p99Limit as number,
    factor: args.stepFactor as number,
    maxClients: args.maxClients as number,
    onSwarm: (swarm) => {
      attachProgress(swarm);
      const done = interruptible(swarm);
      swarm.once('done', done);
    },
    onStep: (step) => {
      const s = step.summary;
      console.log(`find-max: ${step.clients} clients: p99 ${step.p99Ms ?? '-'} ms, errors ${step.errors}, lost ${step.lostDeliveries}, saturated: ${s.saturated} -> ${step.held ? 'held' : `failed (${step.why})`}`);
      rows.push({ clients: step.clients, p99_ms: step.p99Ms, p99_limit_ms: args.p99Limit as number, errors: step.errors, lost_deliveries: step.lostDeliveries, held: step.held ? 'yes' : 'no', why: step.why, saturated: s.saturated, server_cpu_max_pct: s.server ? Math.round(s.server.cpuMaxPct) : null, client_cpu_max_pct: Math.round(s.clientCpuMaxPct), ...hostColumns(s.host) });
    },
  });
  console.log(`find-max: the largest client count that held: ${result.held ?? 'none'} (${result.ended})`);
  for (const step of result.steps) console.log(`  ${String(step.clients).padStart(7)} clients  ${step.held ? 'held  ' : 'failed'}  p99 ${step.p99Ms ?? '-'} ms  saturated: ${step.summary.saturated}`);
  if (args.out) {
    mkdirSync(args.out, { recursive: true });
    const path = join(args.out, `${name}.csv`);
    writeCsv(path, rows);
    console.log(`csv: ${path}`);
  }
  process.exit(result.steps.at(-1)?.summary.interrupted ? 130 : result.held === null ? 1 : 0);
}

let swarm: Swarm;
try {
  swarm = new Swarm(options);
} catch (err) {
  console.error(`swarm: ${(err as Error).message}\nRun with --help for the flags.`);
  process.exit(2);
}
attachProgress(swarm);
if (args.out) {
  const paths = attachCsv(swarm, { dir: args.out, name: args.name ?? `swarm-${swarm.options.scenario}-${stamp()}`, label: args.label });
  swarm.on('done', () => console.log(`csv: ${paths.timeline}, ${paths.summary}${paths.history ? `, appended to ${paths.history}` : ''}`));
}
catchInterrupts();
const done = interruptible(swarm);
const summary = await swarm.run().catch((err: Error) => {
  // Only what the run needs from outside fails here: agents that did not come, a coordinator not reached.
  console.error(`swarm: ${err.message}`);
  process.exit(1);
});
done();
for (const line of summaryLines(summary, args.label)) console.log(line);
process.exit(summary.interrupted ? 130 : summary.counters.completed === swarm.options.clients ? 0 : 1);
