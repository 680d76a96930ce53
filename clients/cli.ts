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
import { DEFAULT_SWARM_OPTIONS as d, SCENARIOS, type SwarmOptions } from './options.js';
import { attachCsv, stamp } from './output/csv.js';
import { attachProgress } from './output/progress.js';
import { summaryLines } from './output/summary.js';

const args = await commandLine('swarm', '$0 [flags]\n\nOpens many WebSocket clients against a server that speaks the pub/sub contract and measures it.\nExample: $0 --url ws://127.0.0.1:9000 --clients 10000 --ramp 2 --delay 5')
  .option('url', { type: 'string', default: d.url, describe: 'server; a bare ws://host:port gets /echo (echo) or /pubsub (others), a URL with a path is used as is; several, comma-separated, share the clients (e.g. --workers on consecutive ports)' })
  .option('scenario', { type: 'string', choices: SCENARIOS, default: d.scenario, describe: 'echo: the C10k sequence; slow: concurrent slow requests; broadcast: fixed-rate fan-out; pubsub: publish/ack round trips; crowd: all connected at once, echo by ping plus broadcasts that must reach everyone (the C100k sequence)' })
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
  .parseAsync();

const options: Partial<SwarmOptions> = {
  url: args.url,
  scenario: args.scenario as SwarmOptions['scenario'],
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
};

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
const summary = await swarm.run();
done();
for (const line of summaryLines(summary, args.label)) console.log(line);
process.exit(summary.interrupted ? 130 : summary.counters.completed === swarm.options.clients ? 0 : 1);
