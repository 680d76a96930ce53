/**
 * `make bench-floods`: what anonymous publishes on ever new channel names cost a server that keeps
 * messages for channels (`--history` in one process, `--expire`). Each server gets, on one WebSocket,
 * acked in windows: --big publishes of --big-bytes on distinct channels, then nothing for the history
 * TTL and 3 s more, then --small one-byte publishes on distinct channels. After each step the server's
 * memory is read after a full garbage collection (through its inspector): JS heap in use and RSS, with
 * what `/stats` says is kept. With `--against DIR` the same runs, side by side, against the server of
 * another checkout (its `dist/server/cli.js`), e.g. one from before the bounds.
 *
 * Targets (ours): after the big flood the heap holds at most --max-kept-bytes more than at start (the
 * history and the cache each keep at most that much, and the cache keeps only the last message of a
 * channel); after the TTL the history keeps nothing; after the small flood at most --max-kept-channels
 * channels are kept.
 *
 * Writes results/floods-<stamp>.csv (a row per server and step).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import { checkHost, hostLine } from '../clients/host/host-check.js';
import { sampleProcess } from '../clients/host/proc.js';
import { hostColumns, stamp, writeCsv, type Row } from '../clients/swarm/output/csv.js';
import { targetLines, type Target } from '../clients/swarm/output/summary.js';
import { requireIntegers, usageError } from '../server/command-line.js';
import { DEFAULT_OPTIONS, serverArgs } from '../server/options.js';
import { InspectorSession } from './lib/inspector.js';
import { benchCli, csvLine, finishBench, numeric, RESULTS_DIR } from './lib/run.js';
import { startServerProcess, type ServerProcess } from './lib/servers.js';

const MIB = 1024 * 1024;

const args = await benchCli('bench-floods', '$0 [flags]\n\nAnonymous publishes on new channel names: heap and RSS of a server with --history and --expire.')
  .option('big', { coerce: numeric, requiresArg: true, default: 2000, describe: 'publishes of --big-bytes, each on a channel of its own' })
  .option('big-bytes', { coerce: numeric, requiresArg: true, default: 60_000, describe: 'bytes of each big message' })
  .option('small', { coerce: numeric, requiresArg: true, default: 200_000, describe: 'one-byte publishes, each on a channel of its own' })
  .option('history', { coerce: numeric, requiresArg: true, default: 100, describe: "the servers' --history" })
  .option('history-ttl', { coerce: numeric, requiresArg: true, default: 1, describe: "the servers' --history-ttl, seconds" })
  .option('expire', { coerce: numeric, requiresArg: true, default: 1, describe: "the servers' --expire, seconds" })
  .option('against', { type: 'string', describe: 'another checkout (built) whose server runs the same floods, side by side' })
  .option('out', { type: 'string', default: RESULTS_DIR, describe: 'directory for the CSV' })
  .parseAsync();
requireIntegers('bench-floods', [['--big', args.big, 0], ['--big-bytes', args.bigBytes, 1], ['--small', args.small, 0], ['--history', args.history, 1], ['--history-ttl', args.historyTtl, 1], ['--expire', args.expire, 0]]);
if ((args.bigBytes as number) > DEFAULT_OPTIONS.maxPayload - 200) usageError('bench-floods', `--big-bytes must be at most ${DEFAULT_OPTIONS.maxPayload - 200} (a frame of the default --max-payload), got ${args.bigBytes}`);
const againstCli = args.against === undefined ? null : resolve(String(args.against), 'dist', 'server', 'cli.js');
if (againstCli !== null && !existsSync(againstCli)) usageError('bench-floods', `--against: ${againstCli} does not exist (build that checkout first)`);

const host = await checkHost(1);
console.log(hostLine(host));
const flags = serverArgs({ history: args.history as number, historyTtl: args.historyTtl as number, expire: args.expire as number, logLevel: 'warn' });
const rows: Row[] = [];
const targets: Target[] = [];

/** Publishes `count` messages of `body` on channels `<prefix>0`, `<prefix>1`, ..., acked in windows of 500. */
async function flood(url: string, prefix: string, count: number, body: string): Promise<number> {
  const ws = new WebSocket(`${url}/pubsub`, { perMessageDeflate: false });
  await new Promise<void>((done, fail) => ws.once('open', () => done()).once('error', fail));
  let acked = 0;
  let errors = 0;
  let windowDone: () => void = () => {};
  ws.on('message', (data) => {
    const frame = JSON.parse(String(data)) as { event: string };
    if (frame.event === 'published' || frame.event === 'error') {
      if (frame.event === 'error') errors++;
      if (++acked % 500 === 0 || acked === count) windowDone();
    }
  });
  const started = performance.now();
  for (let start = 0; start < count; start += 500) {
    const end = Math.min(count, start + 500);
    const window = new Promise<void>((done) => (windowDone = done));
    for (let n = start; n < end; n++) ws.send(`{"action":"publish","payload":{"channel":"${prefix}${n}","message":"${body}"},"id":${n}}`);
    await window;
  }
  ws.close();
  if (errors > 0) throw new Error(`${errors} publishes were answered with an error`);
  return (performance.now() - started) / 1000;
}

/** The server's memory after a full collection, and what it says it keeps. */
async function measure(server: ServerProcess, inspector: InspectorSession): Promise<{ heap: number; rss: number; kept: Record<string, unknown> }> {
  await inspector.collectGarbage();
  const stats = await server.stats();
  const rss = sampleProcess(server.pid)?.rssBytes ?? NaN;
  const kept = { history: stats.history ?? null, cache: Object.fromEntries(Object.entries(stats.broker ?? {}).filter(([key]) => key.startsWith('cache_'))) };
  return { heap: stats.memory.heap_used as number, rss, kept };
}

const mib = (bytes: number) => Math.round((bytes / MIB) * 10) / 10;
const servers: [string, string | undefined][] = [['ours', undefined], ...(againstCli ? [['against', againstCli] as [string, string]] : [])];
for (const [label, script] of servers) {
  const server = await startServerProcess('ours', flags, { inspect: true, script });
  const inspector = await InspectorSession.open(server.inspector!);
  try {
    console.log(`\n== ${label}: ${server.engine}; ${flags.join(' ')}`);
    const steps: [string, () => Promise<string>][] = [
      ['start', async () => ''],
      [`${args.big} x ${args.bigBytes} B`, async () => `${(await flood(server.url, 'big', args.big as number, 'x'.repeat(args.bigBytes as number))).toFixed(1)} s`],
      [`${args.historyTtl} s TTL + 3 s`, async () => (await new Promise((done) => setTimeout(done, ((args.historyTtl as number) + 3) * 1000)), '')],
      [`${args.small} x 1 B`, async () => `${(await flood(server.url, 'small', args.small as number, 's')).toFixed(1)} s`],
    ];
    let start = 0;
    for (const [step, run] of steps) {
      const took = await run();
      const { heap, rss, kept } = await measure(server, inspector);
      if (step === 'start') start = heap;
      console.log(`  ${step.padEnd(22)} heap ${mib(heap).toFixed(1).padStart(6)} MiB  rss ${mib(rss).toFixed(1).padStart(6)} MiB  ${took ? `(${took}) ` : ''}kept ${JSON.stringify(kept)}`);
      const history = kept.history as { channels?: number; bytes?: number } | null;
      rows.push({ server: label, step, heap_used_mib: mib(heap), rss_mib: mib(rss), history_channels: history?.channels ?? null, history_bytes: history?.bytes ?? null, cache_channels: (kept.cache as Record<string, number>).cache_channels ?? null, ...hostColumns(host) });
      if (label !== 'ours') continue;
      if (step.endsWith(' B') && step.startsWith(`${args.big} `)) {
        targets.push({ name: 'after the big flood the heap holds at most --max-kept-bytes (x2: history and cache) more than at start', measured: `+${mib(heap - start)} MiB`, pass: heap - start <= 2 * DEFAULT_OPTIONS.maxKeptBytes });
      } else if (step.includes('TTL')) {
        const cache = kept.cache as Record<string, number>;
        const expired = (args.expire as number) <= (args.historyTtl as number) ? cache.cache_channels ?? 0 : 0;
        targets.push({ name: 'after the TTL the history (and a cache of no longer --expire) keeps nothing', measured: `history ${history?.channels} channels, ${history?.bytes} bytes; cache ${cache.cache_channels} channels`, pass: history?.channels === 0 && expired === 0 });
      } else if (step.startsWith(`${args.small} `)) {
        const channels = Math.max(history?.channels ?? 0, (kept.cache as Record<string, number>).cache_channels ?? 0);
        targets.push({ name: 'after the small flood at most --max-kept-channels channels are kept', measured: `${channels}`, pass: channels <= DEFAULT_OPTIONS.maxKeptChannels });
      }
    }
  } finally {
    await inspector.close();
    await server.stop();
  }
}
const file = join(String(args.out), `floods-${stamp()}.csv`);
writeCsv(file, rows);
console.log(`\n${targetLines(targets).join('\n')}`);
console.log(csvLine([file]));
finishBench(args, targets.some((t) => !t.pass));
