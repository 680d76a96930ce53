/**
 * `make soak`: 10,000 connections held for --minutes (10 by default) under steady traffic: each client
 * pings every --delay seconds (echo round trips) and a broadcast reaches all of them every
 * --broadcast-every seconds (the crowd scenario). Every --sample seconds a row: server RSS, open files,
 * event-loop delay (from /stats), round-trip and fanout p99, server CPU; then the soak forces a full
 * garbage collection in the server (through the inspector) and reads RSS and the JS heap again.
 *
 * PASS when RSS *after a full GC* grows less than 5% from the first sample after the first minute to
 * the last loaded one, open files return to their start once the clients have gone, and every sequence
 * and broadcast completed. RSS as sampled between collections is in the CSV and printed beside it, but
 * it is not the check: V8 lets its old generation grow to the next collection's limit before it
 * collects, so on a steady load it swings by 10 MiB and more (82 -> 92 MiB over a 10-minute run here,
 * and back to 83.5 MiB after one full GC), which says where the collection cycle is, not whether
 * memory creeps. A leak, in the JS heap or outside it, survives the collection and shows.
 * Writes results/soak-<stamp>.csv (the rows) and a row in results/soak-history.csv.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TickEvent } from '../clients/swarm/swarm.js';
import { broadcastCount, validateSwarmOptions } from '../clients/swarm/options.js';
import { appendHistory, hostColumns, stamp, writeCsv, type Row } from '../clients/swarm/output/csv.js';
import { CHECK_FILES, openFileCount, sampleProcess } from '../clients/host/proc.js';
import { benchCli, finishBench, numeric, RESULTS_DIR, runSwarm } from './lib/run.js';
import { InspectorSession } from './lib/inspector.js';
import { startServerProcess } from './lib/servers.js';
import { usageError } from '../server/command-line.js';

const MIB = 1024 * 1024;
const args = await benchCli('soak', '$0 [flags]\n\n10,000 connections under steady echoes and broadcasts for minutes: does memory or the file count creep?')
  .option('minutes', { coerce: numeric, requiresArg: true, default: 10, describe: 'minutes of steady load (at least 2: the first is the warm-up the RSS target leaves out)' })
  .option('clients', { coerce: numeric, requiresArg: true, default: 10_000, describe: 'connections held all along' })
  .option('delay', { coerce: numeric, requiresArg: true, default: 10, describe: 'seconds between one client\'s pings' })
  .option('broadcast-every', { coerce: numeric, requiresArg: true, default: 1, describe: 'seconds between broadcasts to every client' })
  .option('sample', { coerce: numeric, requiresArg: true, default: 30, describe: 'seconds between CSV rows' })
  .option('out', { type: 'string', default: RESULTS_DIR, describe: 'directory for the CSVs' })
  .parseAsync();

const minutes = args.minutes as number;
const sampleS = args.sample as number;
const swarmOptions = {
  scenario: 'crowd' as const,
  clients: args.clients as number,
  ramp: 10,
  delay: args.delay as number,
  rounds: Math.ceil((minutes * 60) / (args.delay as number)),
  broadcastEvery: args.broadcastEvery as number,
  drain: 3,
  channel: 'soak',
  connectTimeout: 30_000,
};
try {
  if (typeof minutes !== 'number' || !(minutes >= 2) || minutes > 24 * 60) throw new RangeError(`--minutes must be from 2 to 1440 (got ${JSON.stringify(minutes)})`);
  if (typeof sampleS !== 'number' || !Number.isInteger(sampleS) || sampleS < 1 || sampleS > 600) throw new RangeError(`--sample must be whole seconds from 1 to 600 (got ${JSON.stringify(sampleS)})`);
  validateSwarmOptions(swarmOptions);
} catch (err) {
  usageError('soak', (err as Error).message);
}

const server = await startServerProcess('ours', [], { inspect: true });
let pass = false;
let inspector: InspectorSession | null = null;
try {
  const stats = server.stats;
  await stats(); // the keep-alive connection of these reads is open from here on, in the count below too
  const filesStart = openFileCount(server.pid)!;
  const rssStart = sampleProcess(server.pid)!.rssBytes;
  const session = (inspector = await InspectorSession.open(server.inspector!));
  console.log(`soak: ${swarmOptions.clients} clients for ${minutes} min against pid ${server.pid} (${server.engine}); open files ${filesStart}, RSS ${(rssStart / MIB).toFixed(1)} MiB at rest`);

  const rows: Row[] = [];
  let window: TickEvent[] = [];
  let loadedSince = 0;
  const sample = async (second: number): Promise<void> => {
    const s = await stats();
    const proc = sampleProcess(server.pid);
    const max = (pick: (t: TickEvent) => number | undefined): number | null => {
      const values = window.map(pick).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
      return values.length ? Math.round(Math.max(...values) * 100) / 100 : null;
    };
    const last = window.at(-1);
    rows.push({
      second,
      connected: last?.counters.connected ?? null,
      server_rss_mib: proc ? Math.round((proc.rssBytes / MIB) * 10) / 10 : null,
      server_open_files: openFileCount(server.pid),
      // Where RSS goes: the JS heap, and memory outside it (uWS's buffers count in neither).
      server_heap_used_mib: Math.round((s.memory.heap_used / MIB) * 10) / 10,
      server_heap_total_mib: Math.round((s.memory.heap_total / MIB) * 10) / 10,
      server_new_space_mib: Math.round((s.memory.new_space / MIB) * 10) / 10,
      server_external_mib: Math.round((s.memory.external / MIB) * 10) / 10,
      server_loop_delay_p99_ms: s.event_loop_delay.p99_ms,
      server_loop_delay_max_ms: s.event_loop_delay.max_ms,
      rtt_p99_max_ms: max((t) => t.rtt?.p99),
      fanout_p99_max_ms: max((t) => t.fanout?.p99),
      server_cpu_mean_pct: window.length ? Math.round(window.reduce((sum, t) => sum + (t.server?.cpuPct ?? 0), 0) / window.length) : null,
    });
    window = [];
    // What survives a full collection: the figure the target reads.
    const gcStarted = performance.now();
    await session.collectGarbage();
    const gcMs = performance.now() - gcStarted;
    const afterGc = sampleProcess(server.pid);
    const heapAfterGc = (await stats()).memory.heap_used as number;
    Object.assign(rows.at(-1)!, {
      server_rss_after_gc_mib: afterGc ? Math.round((afterGc.rssBytes / MIB) * 10) / 10 : null,
      server_heap_used_after_gc_mib: Math.round((heapAfterGc / MIB) * 10) / 10,
      gc_ms: Math.round(gcMs),
    });
    console.log(`soak: ${JSON.stringify(rows.at(-1))}`);
  };
  const { summary } = await runSwarm(`soak ${minutes} min`, { ...swarmOptions, url: server.url, serverPid: server.pid }, undefined, false, (swarm) => {
    swarm.on('tick', (tick: TickEvent) => {
      window.push(tick);
      if (tick.counters.connected === swarmOptions.clients && loadedSince === 0) loadedSince = tick.second;
      if (loadedSince > 0 && (tick.second - loadedSince) % sampleS === 0 && tick.counters.connected === swarmOptions.clients) void sample(tick.second - loadedSince);
    });
  });
  // The clients are gone: the server's sockets must be too.
  const deadline = Date.now() + 15_000;
  while ((await stats()).connections > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
  while ((openFileCount(server.pid) ?? Infinity) > filesStart + CHECK_FILES && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
  await session.close(); // its connection is not the server's own file
  inspector = null;
  const filesEnd = openFileCount(server.pid)!;
  const loaded = rows.filter((r) => typeof r.second === 'number' && (r.second as number) >= 60);
  const growth = (column: string): { first: number | undefined; last: number | undefined; pct: number } => {
    const first = loaded[0]?.[column] as number | undefined;
    const last = loaded.at(-1)?.[column] as number | undefined;
    return { first, last, pct: first && last ? ((last - first) / first) * 100 : NaN };
  };
  const afterGc = growth('server_rss_after_gc_mib');
  const between = growth('server_rss_mib');
  const heap = growth('server_heap_used_after_gc_mib');
  const c = summary.counters;
  console.log(`  ----  RSS as sampled, between collections (not a check): ${between.first} -> ${between.last} MiB (${between.pct.toFixed(1)}%); JS heap after a full GC ${heap.first} -> ${heap.last} MiB`);
  const checks: [string, boolean, string][] = [
    ['RSS after a full GC grew less than 5% after the first minute', afterGc.pct < 5, `${afterGc.first} -> ${afterGc.last} MiB (${afterGc.pct.toFixed(1)}%) over ${loaded.length} samples`],
    ['open files back to their start', filesEnd <= filesStart + CHECK_FILES, `${filesStart} -> ${filesEnd}`],
    ['every echo sequence completed', c.completed === swarmOptions.clients, `${c.completed} of ${swarmOptions.clients}`],
    ['every broadcast reached every client', c.published === broadcastCount(summary.options) && summary.lostDeliveries === 0, `${c.published} published, ${summary.lostDeliveries} copies lost`],
  ];
  for (const [what, ok, detail] of checks) console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${what}: ${detail}`);
  pass = checks.every(([, ok]) => ok) && !summary.interrupted;
  console.log(summary.interrupted ? `soak: INTERRUPTED (${summary.interrupted}) after ${summary.durationS.toFixed(0)} s: the checks above cover that much` : pass ? 'soak: PASS' : 'soak: FAIL');
  const run = `soak-${stamp()}`;
  mkdirSync(args.out, { recursive: true });
  writeCsv(join(args.out, `${run}.csv`), rows);
  appendHistory(join(args.out, 'soak-history.csv'), {
    run,
    minutes,
    clients: swarmOptions.clients,
    rss_start_mib: Math.round((rssStart / MIB) * 10) / 10,
    rss_first_minute_mib: between.first ?? null,
    rss_last_mib: between.last ?? null,
    rss_growth_pct: Math.round(between.pct * 100) / 100,
    rss_after_gc_first_minute_mib: afterGc.first ?? null,
    rss_after_gc_last_mib: afterGc.last ?? null,
    rss_after_gc_growth_pct: Math.round(afterGc.pct * 100) / 100,
    heap_after_gc_first_minute_mib: heap.first ?? null,
    heap_after_gc_last_mib: heap.last ?? null,
    files_start: filesStart,
    files_end: filesEnd,
    completed: c.completed,
    lost_deliveries: summary.lostDeliveries,
    rtt_p99_ms: summary.rtt ? Math.round(summary.rtt.p99 * 100) / 100 : null,
    pass: summary.interrupted ? 'INTERRUPTED' : pass ? 'PASS' : 'FAIL',
    ...hostColumns(summary.host ?? null),
  });
  console.log(`soak: wrote ${join(args.out, `${run}.csv`)}`);
} finally {
  await inspector?.close();
  await server.stop();
}
finishBench(args, !pass);
