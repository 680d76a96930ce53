/**
 * `make bench-slow`: the slow-IO parallelism test. The seed's form (one client sends three 5-second
 * requests at once) and a scaled form (1,000 clients x 3), each against our server and against the ws
 * baseline in --serial mode (a server that handles one connection's requests in turn), in one run.
 * Writes results/slow-<stamp>-replies.csv (every reply's time) and -summary.csv (a row per run).
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { appendHistory, stamp, summaryRow, writeCsv, type Row } from '../clients/swarm/output/csv.js';
import { targetLines, type Target } from '../clients/swarm/output/summary.js';
import type { RunSummary } from '../clients/swarm/swarm.js';
import { benchCli, csvLine, finishBench, interrupted, numeric, RESULTS_DIR, runSwarm, saturationLine } from './lib/run.js';
import { withServer, type ServerKind } from './lib/servers.js';
import { SLOW_IO_BACKENDS, serverArgs, type SlowIoBackend } from '../server/options.js';

const args = await benchCli('bench-slow', '$0 [flags]\n\nSlow requests sent together on one connection: answered together (ours) or in turn (baseline --serial).')
  .option('slow-ms', { coerce: numeric, requiresArg: true, default: 5000, describe: 'ms each request asks for' })
  .option('requests', { coerce: numeric, requiresArg: true, default: 3, describe: 'requests each client sends at once' })
  .option('clients', { coerce: numeric, requiresArg: true, default: 1000, describe: 'clients of the scaled form (the seed form has 1)' })
  .option('slow-io', { type: 'string', choices: SLOW_IO_BACKENDS, default: 'timer', describe: "our server's slow backend (redis/postgres hold a pooled connection per waiting request)" })
  .option('slow-io-pool', { coerce: numeric, requiresArg: true, default: 10, describe: 'pool size of the redis/postgres backend' })
  .option('out', { type: 'string', default: RESULTS_DIR, describe: 'directory for the CSVs and history.csv' })
  .parseAsync();

const slowMs = args.slowMs as number;
const requests = args.requests as number;
const name = `slow-${stamp()}`;
const replies: Row[] = [];
const summaries: Row[] = [];
const results: { kind: ServerKind; clients: number; summary: RunSummary }[] = [];
mkdirSync(args.out, { recursive: true });

const servers: [ServerKind, string[]][] = [
  ['ours', serverArgs({ slowIo: args.slowIo as SlowIoBackend, slowIoPool: args.slowIoPool as number })],
  ['baseline', ['--serial']],
];
let failed = false;
for (const [kind, flags] of servers) {
  if (interrupted()) break;
  await withServer(kind, flags, async (server) => {
    const label = kind === 'ours' ? `ours (${args.slowIo})` : 'baseline --serial';
    for (const clients of [1, args.clients as number]) {
      if (interrupted()) break;
      console.log(`\nbench-slow: ${label}, ${clients} client(s) x ${requests} requests of ${slowMs} ms`);
      const { summary } = await runSwarm(label, {
        url: server.url,
        scenario: 'slow',
        clients,
        ramp: clients > 1 ? 1 : 0,
        slowMs,
        requests,
        // The serial baseline answers the last request after requests x slowMs; that is a result, not a timeout.
        replyTimeout: slowMs * requests + 10_000,
        serverPid: server.pid,
      });
      results.push({ kind, clients, summary });
      const row = summaryRow(summary, label, name);
      summaries.push(row);
      appendHistory(join(args.out, 'history.csv'), row);
      for (const s of summary.samples) replies.push({ server: label, clients, client: s.client, request: s.request, ms: s.ms });
      failed ||= summary.counters.completed !== clients;
    }
  });
}
writeCsv(join(args.out, `${name}-replies.csv`), replies);
writeCsv(join(args.out, `${name}-summary.csv`), summaries);

const max = (kind: ServerKind, clients: number): number => results.find((r) => r.kind === kind && r.clients === clients)?.summary.slow?.max ?? NaN;
const scaled = args.clients as number;
const targets: Target[] = [
  { name: `seed: ${requests} x ${slowMs} ms on one connection answered within ${slowMs * 1.01} ms`, measured: `last reply at ${max('ours', 1).toFixed(1)} ms (baseline --serial: ${max('baseline', 1).toFixed(1)} ms)`, pass: max('ours', 1) <= slowMs * 1.01 },
  { name: `scaled: ${scaled} x ${requests} answered within ${slowMs * 1.1} ms`, measured: `last reply at ${max('ours', scaled).toFixed(1)} ms (baseline --serial: ${max('baseline', scaled).toFixed(1)} ms)`, pass: max('ours', scaled) <= slowMs * 1.1 },
];
console.log('');
for (const line of targetLines(targets)) console.log(line);
for (const r of results) console.log(saturationLine(r.summary, `${r.kind} x${r.clients}`));
console.log(csvLine([join(args.out, `${name}-replies.csv`), join(args.out, `${name}-summary.csv`), join(args.out, 'history.csv')]));
finishBench(args, failed);
