/**
 * `make bench-redis`: cross-instance delivery through the Redis bridge at rising rates. Server processes
 * on consecutive ports (`--workers N --redis`); one publisher client on instance A publishes at a fixed
 * rate, and the subscribers sit on instances B..N, so every copy they get crossed Redis from another
 * process. Each copy is timed at its subscriber from the moment it was due (the swarm's broadcast
 * scenario with `--publishers 1`). Beside it, the same clients on one process without Redis.
 *
 * Every step starts fresh swarm processes; copies of the first `--warmup` seconds are delivered and
 * counted (a lost one fails the step) but not timed, so the latency is the steady state's, not the
 * start-up of a cold JIT. Writes results/redis-<stamp>-steps.csv and appends to results/history.csv.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { totalErrors } from '../clients/metrics.js';
import { appendHistory, stamp, summaryRow, writeCsv, type Row } from '../clients/output/csv.js';
import { targetLines, type Target } from '../clients/output/summary.js';
import { benchCli, numeric, RESULTS_DIR, runSwarm } from './lib/run.js';
import { assertNative, startServerProcess, type ServerProcess } from './lib/servers.js';

const list = (value: unknown): number[] => [value].flat().flatMap((v) => String(v).split(',')).map(Number);

const args = await benchCli(
  'bench-redis',
  '$0 [flags]\n\nOne publisher on server process A, subscribers on B..N, bridged by Redis; vs the same clients on one process without Redis.',
)
  .option('redis', { type: 'string', default: 'redis://127.0.0.1:6379', describe: 'Redis to bridge through (a unique --prefix keeps the run apart)' })
  .option('instances', { coerce: numeric, requiresArg: true, default: 3, describe: 'server processes behind the bridge, on consecutive ports: A publishes, B..N hold the subscribers (at least 2)' })
  .option('subscribers', { coerce: numeric, requiresArg: true, default: 4, describe: 'subscriber clients, spread over instances B..N; deliveries per second = rate x subscribers' })
  .option('rates', { coerce: list, default: '5000,10000,20000,50000,100000', describe: 'comma-separated publish rates, messages per second' })
  .option('step-seconds', { coerce: numeric, requiresArg: true, default: 10, describe: 'seconds of publishing per rate, warm-up included' })
  .option('warmup', { coerce: numeric, requiresArg: true, default: 4, describe: 'seconds at the start of each step whose copies are counted but not timed' })
  .option('out', { type: 'string', default: RESULTS_DIR, describe: 'directory for the CSV and history.csv' })
  .check((a) => {
    for (const key of ['instances', 'subscribers', 'stepSeconds'] as const) {
      if (typeof a[key] !== 'number' || !Number.isInteger(a[key]) || !((a[key] as number) > 0)) {
        throw new Error(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be a whole number above 0, got ${String(a[key])}`);
      }
    }
    if ((a.instances as number) < 2) throw new Error(`--instances must be at least 2 (a publisher's and a subscribers' process), got ${String(a.instances)}`);
    if (typeof a.warmup !== 'number' || !(a.warmup >= 0) || a.warmup >= (a.stepSeconds as number)) {
      throw new Error(`--warmup must be seconds from 0 to below --step-seconds (${String(a.stepSeconds)}), got ${String(a.warmup)}`);
    }
    if ((a.rates as number[]).some((r) => !Number.isFinite(r) || r <= 0)) throw new Error(`--rates must be positive numbers, got ${String(a.rates)}`);
    return true;
  })
  .parseAsync();

const instances = args.instances as number;
const subscribers = args.subscribers as number;
const name = `redis-${stamp()}`;
const steps: Row[] = [];
type Step = { rate: number; deliveries: number; p99: number; ok: boolean };
const results = new Map<string, Step[]>();
mkdirSync(args.out, { recursive: true });

/** Client 0 (the publisher) goes to the first URL; subscriber i to the (i mod n)-th of the others. */
const clientUrls = (publisherUrl: string, subscriberUrls: string[]): string =>
  [publisherUrl, ...Array.from({ length: subscribers }, (_, i) => subscriberUrls[i % subscriberUrls.length])].join(',');

const bridged = `${instances} processes via Redis`;
const setups: [string, () => Promise<ServerProcess>, (s: ServerProcess) => string][] = [
  ['one process, no Redis', () => startServerProcess('ours', ['--no-allow-fallback']), (s) => clientUrls(s.url, [s.url])],
  [
    bridged,
    () => startServerProcess('cluster', ['--no-allow-fallback', '--workers', String(instances), '--worker-ports', 'consecutive', '--redis', args.redis, '--prefix', `bench${randomBytes(3).toString('hex')}`]),
    (s) => clientUrls(`ws://127.0.0.1:${s.port}`, Array.from({ length: instances - 1 }, (_, i) => `ws://127.0.0.1:${s.port + 1 + i}`)),
  ],
];
let helpersShown = false;
for (const [label, start, urls] of setups) {
  const server = await start();
  const rows: Step[] = [];
  results.set(label, rows);
  try {
    assertNative(server);
    console.log(`\n== ${label}: 1 publisher, ${subscribers} subscribers${label === bridged ? ` on instances 2 to ${instances}, the publisher on 1` : ''}`);
    for (const rate of args.rates as number[]) {
      const { summary } = await runSwarm(
        label,
        {
          url: urls(server), scenario: 'broadcast', clients: 1 + subscribers, publishers: 1, rate,
          duration: args.stepSeconds as number, warmup: args.warmup as number, drain: 1, ramp: 0.2, workers: 2, serverPid: server.pid,
        },
        undefined,
        true,
      );
      if (!helpersShown) {
        console.log(`swarm: ws helpers ${summary.helpers}`);
        helpersShown = true;
      }
      const c = summary.counters;
      const deliveries = c.delivered / (args.stepSeconds as number);
      const ok = totalErrors(c) === 0 && summary.lostDeliveries === 0;
      const f = summary.fanout;
      rows.push({ rate, deliveries, p99: f?.p99 ?? Infinity, ok });
      steps.push({
        setup: label, subscribers: c.subscribed, rate, deliveries_per_s: Math.round(deliveries),
        fanout_p50_ms: f?.p50 ?? null, fanout_p99_ms: f?.p99 ?? null, fanout_p999_ms: f?.p999 ?? null, fanout_max_ms: f?.max ?? null, timed_copies: f?.count ?? 0,
        published: c.published, lost_deliveries: summary.lostDeliveries, errors: totalErrors(c),
        server_cpu_max_pct: Math.round(summary.server?.cpuMaxPct ?? NaN), client_cpu_max_pct: Math.round(summary.clientCpuMaxPct), saturated: summary.saturated,
      });
      appendHistory(join(args.out, 'history.csv'), summaryRow(summary, label, name));
      console.log(
        `${label} @ ${rate} msg/s: ${Math.round(deliveries)} deliveries/s, fanout p50 ${f?.p50.toFixed(2) ?? '-'} p99 ${f?.p99.toFixed(2) ?? '-'} max ${f?.max.toFixed(2) ?? '-'} ms, ` +
          `lost ${summary.lostDeliveries}, errors ${totalErrors(c)}, busiest server process ${Math.round(summary.server?.cpuMaxPct ?? NaN)}%, swarm ${Math.round(summary.clientCpuMaxPct)}%, saturated: ${summary.saturated}`,
      );
      if (!ok) break;
    }
  } finally {
    await server.stop();
  }
}
const file = join(args.out, `${name}-steps.csv`);
writeCsv(file, steps);

const through = results.get(bridged) ?? [];
const at50k = through.find((r) => r.rate === 50_000);
const best = Math.max(0, ...through.filter((r) => r.ok).map((r) => r.deliveries));
const targets: Target[] = [
  at50k
    ? { name: 'through the bridge, p99 <= 5 ms at 50,000 msg/s', measured: `${at50k.p99.toFixed(2)} ms${at50k.ok ? '' : ' (messages lost)'}`, pass: at50k.ok && at50k.p99 <= 5 }
    : { name: 'through the bridge, p99 <= 5 ms at 50,000 msg/s', measured: 'not reached', pass: false },
  { name: 'through the bridge, >= 200,000 deliveries/s', measured: `${Math.round(best)}/s (last step without loss)`, pass: best >= 200_000 },
];
console.log('');
for (const line of targetLines(targets)) console.log(line);
console.log(
  `fanout is publish on instance 1 -> Redis -> instances 2 to ${instances} -> subscriber, from each message's due moment, after ${String(args.warmup)} s of warm-up per step; ` +
    'server CPU is the busiest server process (Redis itself is not sampled); the swarm and all servers share this machine',
);
console.log(`csv: ${file}`);
