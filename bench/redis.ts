/**
 * `make bench-redis`: delivery through the Redis bridge at rising rates. A few clients, spread over
 * three server processes on consecutive ports (`--workers 3 --redis`), subscribe to one channel and
 * publish in turn at a fixed total rate; every message travels through Redis, also back to its own
 * instance, and each client times its own messages. Beside it, the same load on one process without
 * Redis. Writes results/redis-<stamp>-steps.csv.
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

const args = await benchCli('bench-redis', '$0 [flags]\n\nMessages per second through the Redis bridge (3 server processes) vs one process without Redis.')
  .option('redis', { type: 'string', default: 'redis://127.0.0.1:6379', describe: 'Redis to bridge through (a unique --prefix keeps the run apart)' })
  .option('instances', { coerce: numeric, requiresArg: true, default: 3, describe: 'server processes behind the bridge, on consecutive ports' })
  .option('clients', { coerce: numeric, requiresArg: true, default: 6, describe: 'subscribers (and publishers), spread over the instances' })
  .option('rates', { coerce: list, default: '5000,10000,20000,50000,100000', describe: 'comma-separated total publish rates, messages per second' })
  .option('step-seconds', { coerce: numeric, requiresArg: true, default: 4, describe: 'seconds of publishing per rate' })
  .option('out', { type: 'string', default: RESULTS_DIR, describe: 'directory for the CSV and history.csv' })
  .check((a) => {
    for (const key of ['instances', 'clients', 'stepSeconds'] as const) {
      if (typeof a[key] !== 'number' || !((a[key] as number) > 0)) throw new Error(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be a number above 0, got ${String(a[key])}`);
    }
    if ((a.rates as number[]).some((r) => !Number.isFinite(r) || r <= 0)) throw new Error(`--rates must be positive numbers, got ${String(a.rates)}`);
    return true;
  })
  .parseAsync();

const instances = args.instances as number;
const name = `redis-${stamp()}`;
const steps: Row[] = [];
const results = new Map<string, { deliveries: number; p99: number; ok: boolean }[]>();
mkdirSync(args.out, { recursive: true });

const setups: [string, () => Promise<ServerProcess>, (s: ServerProcess) => string][] = [
  ['one process, no Redis', () => startServerProcess('ours', ['--no-allow-fallback']), (s) => s.url],
  [
    `${instances} processes via Redis`,
    () => startServerProcess('cluster', ['--no-allow-fallback', '--workers', String(instances), '--worker-ports', 'consecutive', '--redis', args.redis, '--prefix', `bench${randomBytes(3).toString('hex')}`]),
    (s) => Array.from({ length: instances }, (_, i) => `ws://127.0.0.1:${s.port + i}`).join(','),
  ],
];
for (const [label, start, urls] of setups) {
  const server = await start();
  const rows: { deliveries: number; p99: number; ok: boolean }[] = [];
  results.set(label, rows);
  try {
    assertNative(server);
    console.log(`\n== ${label}`);
    for (const rate of args.rates as number[]) {
      const { summary } = await runSwarm(
        label,
        { url: urls(server), scenario: 'broadcast', clients: args.clients as number, rate, duration: args.stepSeconds as number, drain: 1, ramp: 0.2, workers: 2, serverPid: server.pid },
        undefined,
        true,
      );
      const c = summary.counters;
      const deliveries = c.delivered / (args.stepSeconds as number);
      const ok = totalErrors(c) === 0 && summary.lostDeliveries === 0;
      rows.push({ deliveries, p99: summary.rtt?.p99 ?? Infinity, ok });
      steps.push({
        setup: label, clients: c.subscribed, rate, deliveries_per_s: Math.round(deliveries),
        rtt_p50_ms: summary.rtt?.p50 ?? null, rtt_p99_ms: summary.rtt?.p99 ?? null, rtt_max_ms: summary.rtt?.max ?? null,
        published: c.published, lost_deliveries: summary.lostDeliveries, errors: totalErrors(c),
        server_cpu_max_pct: Math.round(summary.server?.cpuMaxPct ?? NaN), client_cpu_max_pct: Math.round(summary.clientCpuMaxPct), saturated: summary.saturated,
      });
      appendHistory(join(args.out, 'history.csv'), summaryRow(summary, label, name));
      console.log(`${label} @ ${rate} msg/s: ${Math.round(deliveries)} deliveries/s, rtt p50 ${summary.rtt?.p50.toFixed(2) ?? '-'} p99 ${summary.rtt?.p99.toFixed(2) ?? '-'} ms, lost ${summary.lostDeliveries}, errors ${totalErrors(c)}, busiest server process ${Math.round(summary.server?.cpuMaxPct ?? NaN)}%, swarm ${Math.round(summary.clientCpuMaxPct)}%, saturated: ${summary.saturated}`);
      if (!ok) break;
    }
  } finally {
    await server.stop();
  }
}
const file = join(args.out, `${name}-steps.csv`);
writeCsv(file, steps);

const bridged = results.get(`${instances} processes via Redis`) ?? [];
const rates = args.rates as number[];
const at50k = rates.indexOf(50_000);
const best = Math.max(0, ...bridged.filter((r) => r.ok).map((r) => r.deliveries));
const targets: Target[] = [
  at50k >= 0 && bridged[at50k]
    ? { name: 'through the bridge, p99 <= 5 ms at 50,000 msg/s', measured: `${bridged[at50k].p99.toFixed(2)} ms${bridged[at50k].ok ? '' : ' (messages lost)'}`, pass: bridged[at50k].ok && bridged[at50k].p99 <= 5 }
    : { name: 'through the bridge, p99 <= 5 ms at 50,000 msg/s', measured: 'not reached', pass: false },
  { name: 'through the bridge, >= 200,000 deliveries/s', measured: `${Math.round(best)}/s (last step without loss)`, pass: best >= 200_000 },
];
console.log('');
for (const line of targetLines(targets)) console.log(line);
console.log('rtt is publish -> Redis -> the instance -> the publisher, so every round trip crosses the bridge; server CPU is the busiest of the processes (Redis itself is not sampled)');
console.log(`csv: ${file}`);
