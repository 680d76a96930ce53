/**
 * `make bench-broadcast`: the sockjs-bench saturation method. For each server (ours, the ws baseline, the
 * bare-uWS reference, the Socket.IO peer, which the swarm speaks Socket.IO to) and each number of clients, all clients subscribe to one channel and publish in turn
 * at a fixed total rate; the rate grows by --factor step by step until the mean round trip passes
 * --rtt-limit or a message is lost. The last rate that passed is the server's saturation point at that
 * many clients. If the first rate already fails, the rate falls by the same factor until one passes.
 * Writes results/broadcast-<stamp>-steps.csv (a row per server, clients, rate) and -saturation.csv.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { appendHistory, hostColumns, stamp, summaryRow, writeCsv, type Row } from '../clients/swarm/output/csv.js';
import { targetLines, type Target } from '../clients/swarm/output/summary.js';
import { totalErrors } from '../clients/swarm/metrics.js';
import { benchCli, csvLine, finishBench, interrupted, numeric, quickOr, RESULTS_DIR, runSwarm } from './lib/run.js';
import { withServer, type ServerKind } from './lib/servers.js';

/** A comma-separated flag as a list; yargs hands over a number for `--clients 1000` and an array when repeated. */
const list = (value: unknown): string[] => [value].flat().flatMap((v) => String(v).split(',')).map((v) => v.trim()).filter(Boolean);

const args = await benchCli('bench-broadcast', '$0 [flags]\n\nFan-out saturation of ours vs the ws baseline vs bare uWS vs Socket.IO, at several numbers of clients.')
  .option('quick', { type: 'boolean', default: false, describe: 'short form: clients 100,1000 and 2-second steps' })
  .option('clients', { coerce: list, describe: 'comma-separated numbers of clients (default 25,100,500,1000,2000; quick 100,1000)' })
  .option('servers', { coerce: list, default: 'ours,baseline,bare,socketio', describe: 'comma-separated servers: ours, baseline, bare, socketio (bench/socketio-server.ts, rooms as channels)' })
  .option('start', { coerce: numeric, requiresArg: true, default: 20_000, describe: 'deliveries per second (rate x clients) of the first step' })
  .option('factor', { coerce: numeric, requiresArg: true, default: 2, describe: 'rate multiplier from one step to the next' })
  .option('max-steps', { coerce: numeric, requiresArg: true, default: 8, describe: 'steps per (server, clients) at most' })
  .option('step-seconds', { coerce: numeric, requiresArg: true, describe: 'seconds of publishing per step (default 4; quick 2)' })
  .option('rtt-limit', { coerce: numeric, requiresArg: true, default: 200, describe: 'mean round trip, ms, past which a step fails' })
  .option('payload', { coerce: numeric, requiresArg: true, default: 0, describe: 'bytes of padding per message' })
  .option('out', { type: 'string', default: RESULTS_DIR, describe: 'directory for the CSVs and history.csv' })
  .check((a) => {
    const kinds = a.servers as string[];
    const bad = kinds.find((k) => !['ours', 'baseline', 'bare', 'socketio'].includes(k));
    if (bad) throw new Error(`--servers: unknown server ${bad}; use ours, baseline, bare, socketio`);
    const levels = ((a.clients as string[] | undefined) ?? []).map(Number);
    if (levels.some((n) => !Number.isInteger(n) || n < 1 || n > 18_000)) throw new Error(`--clients must be integers from 1 to 18000, got ${String(a.clients)}`);
    for (const key of ['start', 'factor', 'maxSteps', 'stepSeconds', 'rttLimit'] as const) {
      if (a[key] === undefined) continue; // --step-seconds: its default depends on --quick
      if (typeof a[key] !== 'number' || !((a[key] as number) > 0)) throw new Error(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be a number above 0, got ${String(a[key])}`);
    }
    if ((a.factor as number) <= 1) throw new Error(`--factor must be above 1, got ${String(a.factor)}`);
    return true;
  })
  .parseAsync();

const levels = quickOr(args.quick, args.clients as string[] | undefined, ['25', '100', '500', '1000', '2000'], ['100', '1000']).map(Number);
const stepSeconds = quickOr(args.quick, args.stepSeconds as number | undefined, 4, 2);
const kinds = args.servers as ServerKind[];
const name = `broadcast-${stamp()}`;
mkdirSync(args.out, { recursive: true });
const steps: Row[] = [];
/** Best passing step per (server, clients). */
const best = new Map<string, { rate: number; deliveries: number }>();

for (const kind of kinds) {
  if (interrupted()) break;
  await withServer(kind, [], async (server) => {
    console.log(`\n== ${kind}: ${server.engine}`);
    for (const clients of levels) {
      let rate = (args.start as number) / clients;
      for (let step = 0; step < (args.maxSteps as number) && !interrupted(); step++, rate *= args.factor as number) {
        const { summary } = await runSwarm(
          kind,
          {
            url: server.url, scenario: 'broadcast', protocol: kind === 'socketio' ? 'socketio' : 'contract', clients, rate, duration: stepSeconds, drain: 1,
            ramp: Math.min(2, clients / 2000), payload: args.payload as number, serverPid: server.pid,
          },
          undefined,
          true,
        );
        const c = summary.counters;
        const deliveries = c.delivered / stepSeconds;
        const mean = summary.rtt?.mean ?? Infinity;
        // A step cut by Ctrl-C is kept in the CSV as such, and neither passes nor fails.
        const ok = !summary.interrupted && totalErrors(c) === 0 && summary.lostDeliveries === 0 && c.ownLost === 0 && mean <= (args.rttLimit as number);
        steps.push({
          server: kind, clients, rate: Math.round(rate * 10) / 10, deliveries_per_s: Math.round(deliveries),
          rtt_mean_ms: summary.rtt?.mean ?? null, rtt_p50_ms: summary.rtt?.p50 ?? null, rtt_p99_ms: summary.rtt?.p99 ?? null, rtt_max_ms: summary.rtt?.max ?? null,
          published: c.published, delivered: c.delivered, lost_deliveries: summary.lostDeliveries, own_lost: c.ownLost, errors: totalErrors(c),
          server_cpu_max_pct: Math.round(summary.server?.cpuMaxPct ?? NaN), client_cpu_max_pct: Math.round(summary.clientCpuMaxPct),
          saturated: summary.saturated, passed: summary.interrupted ? 'interrupted' : ok ? 'yes' : 'no', ...hostColumns(summary.host),
        });
        appendHistory(join(args.out, 'history.csv'), summaryRow(summary, kind, name));
        console.log(
          `${kind} ${clients} clients @ ${rate.toFixed(1)} msg/s: ${Math.round(deliveries)} deliveries/s, rtt mean ${mean.toFixed(1)} p99 ${summary.rtt?.p99.toFixed(1) ?? '-'} ms, lost ${summary.lostDeliveries}, errors ${totalErrors(c)}, cpu server ${Math.round(summary.server?.cpuMaxPct ?? NaN)}% swarm ${Math.round(summary.clientCpuMaxPct)}% -> ${ok ? 'ok' : `saturated (${summary.saturated} cpu)`}`,
        );
        if (summary.interrupted) break;
        if (ok) {
          best.set(`${kind}/${clients}`, { rate, deliveries });
          continue;
        }
        // Past saturation. When not even the first rate passed, walk down instead, to find one that does.
        if (best.has(`${kind}/${clients}`) || rate / (args.factor as number) ** 2 * clients < 100) break;
        rate /= (args.factor as number) ** 2;
      }
    }
  });
}

const saturation: Row[] = [];
for (const clients of levels) {
  const get = (kind: ServerKind) => best.get(`${kind}/${clients}`);
  for (const kind of kinds) {
    const mine = get(kind);
    const ratio = (other: ServerKind): number | null => (mine && get(other) ? mine.deliveries / get(other)!.deliveries : null);
    saturation.push({
      server: kind, clients, max_rate: mine ? Math.round(mine.rate * 10) / 10 : 0, max_deliveries_per_s: mine ? Math.round(mine.deliveries) : 0,
      vs_baseline: ratio('baseline'), vs_bare: ratio('bare'), vs_socketio: ratio('socketio'),
    });
  }
}
writeCsv(join(args.out, `${name}-steps.csv`), steps);
writeCsv(join(args.out, `${name}-saturation.csv`), saturation);

console.log('\nsaturation (deliveries/s of the last step that passed):');
for (const row of saturation) console.log(`  ${String(row.server).padEnd(8)} ${String(row.clients).padStart(5)} clients: ${row.max_deliveries_per_s}/s at ${row.max_rate} msg/s`);
const at1000 = (kind: ServerKind): number | undefined => best.get(`${kind}/1000`)?.deliveries;
if (levels.includes(1000)) {
  const ours = at1000('ours');
  const targets: Target[] = [];
  if (kinds.includes('baseline')) {
    const base = at1000('baseline');
    targets.push({ name: 'broadcast at 1000 clients >= 5x the ws baseline', measured: ours && base ? `${(ours / base).toFixed(2)}x` : 'not measured', pass: ours && base ? ours / base >= 5 : false });
  }
  if (kinds.includes('bare')) {
    const bare = at1000('bare');
    targets.push({ name: 'broadcast at 1000 clients >= 0.8x bare uWS', measured: ours && bare ? `${(ours / bare).toFixed(2)}x` : 'not measured', pass: ours && bare ? ours / bare >= 0.8 : false });
  }
  for (const line of targetLines(targets)) console.log(line);
  const sio = at1000('socketio');
  if (kinds.includes('socketio') && ours && sio) console.log(`ours against Socket.IO at 1000 clients: ${(ours / sio).toFixed(2)}x the deliveries/s`);
}
console.log('a step fails on the first lost message, error, or mean rtt over the limit; its "saturated" column says whose CPU ran out');
console.log(csvLine([join(args.out, `${name}-steps.csv`), join(args.out, `${name}-saturation.csv`)]));
finishBench(args, false);
