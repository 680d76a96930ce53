/**
 * `make bench-c10k` (`QUICK=1` for the short form): starts our server (in-memory) as a child process,
 * runs 10,000 clients through the C10k echo sequence, writes results/c10k-<stamp>-{timeline,summary}.csv,
 * appends the summary to results/history.csv, prints the targets beside the measured figures, and exits 1
 * when any sequence did not complete. With --tokens it runs twice, each on a fresh server: as above, then
 * with the server started with --jwt-secret and every client bringing a token signed for it, and
 * compares the connect rates side by side.
 */
import { randomBytes } from 'node:crypto';
import type { RunSummary } from '../clients/swarm/swarm.js';
import { validateSwarmOptions } from '../clients/swarm/options.js';
import { stamp } from '../clients/swarm/output/csv.js';
import { targetLines, type Target } from '../clients/swarm/output/summary.js';
import { benchCli, csvLine, finishBench, interrupted, numeric, quickOr, RESULTS_DIR, runSwarm, saturationLine } from './lib/run.js';
import { withServer, type ServerKind } from './lib/servers.js';
import { serverArgs } from '../server/options.js';
import { usageError } from '../server/command-line.js';

const args = await benchCli('bench-c10k', '$0 [flags]\n\nThe C10k echo sequence against a fresh server: 10,000 clients connect over --ramp seconds, then each\nwaits --delay seconds, sends, reads the echo, --rounds times. Default run about 5 minutes; --quick about 1.')
  .option('quick', { type: 'boolean', default: false, describe: 'short form: ramp 1.9 s (5,263 connects/s offered, 5% above the 5,000/s target), delay 15 s, same 10,000 clients' })
  .option('clients', { coerce: numeric, requiresArg: true, default: 10_000, describe: 'connections' })
  .option('ramp', { coerce: numeric, requiresArg: true, describe: 'seconds over which clients connect (default 120; quick 1.9)' })
  .option('delay', { coerce: numeric, requiresArg: true, describe: 'seconds before each round (default 60; quick 15)' })
  .option('rounds', { coerce: numeric, requiresArg: true, default: 3, describe: 'echo rounds per client' })
  .option('workers', { coerce: numeric, requiresArg: true, default: 0, describe: 'swarm processes; 0 = one per 5000 clients' })
  .option('source-addresses', { type: 'string', default: '', describe: 'comma-separated local addresses the clients connect from; default: the kernel picks' })
  .option('server', { type: 'string', choices: ['ours', 'baseline', 'socketio'], default: 'ours', describe: 'which server to start: ours (uWS), the ws baseline, or the Socket.IO peer (bench/socketio-server.ts; the swarm speaks Socket.IO to it)' })
  .option('tokens', { type: 'boolean', default: false, describe: 'run again with --jwt-secret on the server and a signed token per client (--token-secret), and compare' })
  .option('out', { type: 'string', default: RESULTS_DIR, describe: 'directory for the CSVs and history.csv' })
  .parseAsync();

/** The connect-rate target, connects/s. */
const CONNECT_TARGET = 5000;
/**
 * The short form's ramp offers 5% more than the target (10,000 clients: 5,263/s): the swarm paces its
 * connects, so a run that keeps up achieves the offered rate (within 0.3% here), never more, and a ramp
 * offering the target itself would pass or fail it by a few connects a second either way.
 */
const QUICK_RAMP_S = 1.9;
const ramp = quickOr(args.quick, args.ramp as number | undefined, 120, QUICK_RAMP_S);
const delay = quickOr(args.quick, args.delay as number | undefined, 60, 15);
const kind = args.server as ServerKind;
// The server must not close idle clients during the delay: its idle timeout is set above it.
const idle = Math.min(960, Math.max(120, Math.ceil((delay * 2) / 8) * 8));
const swarmOptions = {
  scenario: 'echo' as const,
  protocol: kind === 'socketio' ? ('socketio' as const) : ('contract' as const),
  clients: args.clients as number,
  ramp,
  delay,
  rounds: args.rounds as number,
  workers: args.workers as number,
  sourceAddresses: args.sourceAddresses.split(',').map((a) => a.trim()).filter(Boolean),
};
try {
  validateSwarmOptions(swarmOptions); // a bad flag exits 2 before any server starts
} catch (err) {
  usageError('bench-c10k', (err as Error).message);
}
if (args.tokens && kind !== 'ours') {
  usageError('bench-c10k', '--tokens needs --server ours (the baseline reads no tokens)');
}

/** One run on a fresh server; with `secret`, the server verifies a token per client signed with it. */
async function run(secret: string | null): Promise<RunSummary | null> {
  return withServer(kind, kind === 'ours' ? serverArgs({ idleTimeout: idle, jwtSecret: secret || null }) : [], async (server) => {
    const label = secret ? `${kind} with tokens` : kind;
    console.log(`bench-c10k: ${label}: server pid ${server.pid} on ${server.url}, engine ${server.engine}`);
    const name = `c10k-${stamp()}${secret ? '-tokens' : ''}`;
    const { summary, files } = await runSwarm(
      label,
      { ...swarmOptions, url: server.url, serverPid: server.pid, tokenSecret: secret ?? '' },
      { dir: args.out, name },
    );
    const c = summary.counters;
    const clients = summary.options.clients;
    const targets: Target[] = [
      { name: 'sequences complete', measured: `${c.completed} of ${clients}, ${clients - c.completed} not`, pass: c.completed === clients },
      { name: 'echo p99 <= 5 ms', measured: summary.rtt ? `${summary.rtt.p99.toFixed(2)} ms` : 'no round trips', pass: summary.rtt ? summary.rtt.p99 <= 5 : false },
      summary.offeredConnectRate > CONNECT_TARGET
        ? { name: `connect rate >= ${CONNECT_TARGET}/s`, measured: `${Math.round(summary.connectRate)}/s`, pass: summary.connectRate >= CONNECT_TARGET }
        : { name: `connect rate >= ${CONNECT_TARGET}/s`, measured: `${Math.round(summary.connectRate)}/s`, pass: null, note: `the ramp offered ${Math.round(summary.offeredConnectRate)}/s, not above the target; run with QUICK=1 or --ramp 1.9` },
      summary.server?.bytesPerConnection != null
        ? { name: 'server memory <= 2 KB per idle connection', measured: `${Math.round(summary.server.bytesPerConnection)} B`, pass: summary.server.bytesPerConnection <= 2048 }
        : {
            name: 'server memory <= 2 KB per idle connection',
            measured: 'N/A',
            pass: null,
            note: `${summary.server?.memoryFitMissing ?? 'server not sampled'}${summary.server?.memoryFitMissing === 'ramp too short to fit' ? ' (the slope of RSS over connections needs a ramp of 5 s or more; the default run has 120 s)' : ''}`,
          },
    ];
    for (const line of targetLines(targets)) console.log(line);
    console.log(saturationLine(summary));
    console.log(csvLine(files));
    return summary;
  }).catch((err: Error) => {
    console.error(`bench-c10k: ${err.message}`);
    return null;
  });
}

const complete = (s: RunSummary | null): boolean => s !== null && s.counters.completed === s.options.clients;
const plain = await run(null);
let failed = !complete(plain);
if (args.tokens && !interrupted()) {
  const withTokens = await run(randomBytes(32).toString('base64url'));
  failed ||= !complete(withTokens);
  if (plain && withTokens) {
    const ratio = withTokens.connectRate / plain.connectRate;
    console.log('\nwith tokens against without, side by side:');
    for (const line of targetLines([
      { name: 'connect rate with tokens within 10% of without', measured: `${Math.round(withTokens.connectRate)}/s vs ${Math.round(plain.connectRate)}/s (${ratio.toFixed(2)}x)`, pass: ratio >= 0.9 },
      { name: 'echo p99 with tokens <= 5 ms', measured: withTokens.rtt ? `${withTokens.rtt.p99.toFixed(2)} ms (without: ${plain.rtt?.p99.toFixed(2)} ms)` : 'no round trips', pass: withTokens.rtt ? withTokens.rtt.p99 <= 5 : false },
    ])) console.log(line);
  }
}
finishBench(args, failed);
