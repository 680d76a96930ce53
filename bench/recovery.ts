/**
 * `make bench-recovery`: no message lost across a reconnect, measured. Two server instances bridged by
 * Redis, both with `--history`; --subscribers subscribers spread over --channels channels and over both
 * instances (in a process of their own); one publisher on the first instance at --rate msg/s, round
 * robin over the channels, for --seconds. Every subscriber drops its connection once, at a random
 * moment, stays away --away-min-ms to --away-max-ms, and comes back on the other instance with `since`
 * (the last offset it holds). At the end each must hold every message of its channel exactly once, in
 * order, with `recovered:true`.
 *
 * Prints recovery time (new connection to the `subscribed` ack, replay included) p50/p99/max, messages
 * replayed, the publish rate kept, CPU of each side and which one saturated. Writes
 * results/recovery-<stamp>.csv (the run) and -subscribers.csv (one row per subscriber), and appends to
 * results/recovery-history.csv.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { checkHost, hostLine, type HostCheck } from '../clients/host/host-check.js';
import { interruptibleSleep } from '../clients/host/interrupt.js';
import { newHistogram, record, summarize } from '../clients/swarm/metrics.js';
import { appendHistory, hostColumns, stamp, writeCsv, type Row } from '../clients/swarm/output/csv.js';
import { targetLines, type Target } from '../clients/swarm/output/summary.js';
import { sampleProcess } from '../clients/host/proc.js';
import type { SubscriberPlan, SubscriberResult } from '../clients/subscribers/recovering-subscriber.js';
import type { FromSubscribers, ToSubscribers } from '../clients/subscribers/recovery-subscribers.js';
import { saturation } from '../clients/swarm/saturation.js';
import { requireIntegers, usageError } from '../server/command-line.js';
import { BENCH_HOST_CHECK_S, benchCli, exitCode, finishBench, interrupted, numeric, RESULTS_DIR } from './lib/run.js';
import { startServerProcess, type ServerProcess } from './lib/servers.js';
import { serverArgs } from '../server/options.js';

const args = await benchCli(
  'bench-recovery',
  '$0 [flags]\n\nSubscribers on two Redis-bridged instances drop their connection once and come back with since on the other one; each must end with every message exactly once, in order.',
)
  .option('redis', { type: 'string', default: 'redis://127.0.0.1:6379', describe: 'Redis that bridges the two instances and keeps the history (a unique --prefix keeps the run apart; its keys are deleted at the end)' })
  .option('subscribers', { coerce: numeric, requiresArg: true, default: 1000, describe: 'subscribers, spread over the channels and over both instances' })
  .option('channels', { coerce: numeric, requiresArg: true, default: 100, describe: 'channels the publisher sends on in turn; deliveries per second = rate x subscribers / channels' })
  .option('rate', { coerce: numeric, requiresArg: true, default: 5000, describe: 'messages per second the publisher offers' })
  .option('seconds', { coerce: numeric, requiresArg: true, default: 20, describe: 'seconds of publishing; every drop and return falls inside them' })
  .option('history', { coerce: numeric, requiresArg: true, default: 1000, describe: "the servers' --history: messages kept per channel" })
  .option('away-min-ms', { coerce: numeric, requiresArg: true, default: 100, describe: 'shortest time a subscriber stays away' })
  .option('away-max-ms', { coerce: numeric, requiresArg: true, default: 2000, describe: 'longest time a subscriber stays away' })
  .option('catch-up-ms', { coerce: numeric, requiresArg: true, default: 10_000, describe: 'how long after the last publish the subscribers may take to hold every message' })
  .option('out', { type: 'string', default: RESULTS_DIR, describe: 'directory for the CSVs' })
  .parseAsync();
requireIntegers('bench-recovery', [
  ['--subscribers', args.subscribers, 1], ['--channels', args.channels, 1], ['--rate', args.rate, 1], ['--seconds', args.seconds, 5],
  ['--history', args.history, 1], ['--away-min-ms', args.awayMinMs, 0], ['--away-max-ms', args.awayMaxMs, 0], ['--catch-up-ms', args.catchUpMs, 100],
]);
const subscriberCount = args.subscribers as number;
const channelCount = args.channels as number;
const rate = args.rate as number;
const seconds = args.seconds as number;
const awayMin = args.awayMinMs as number;
const awayMax = args.awayMaxMs as number;
// A drop falls after 2 s of publishing (the subscriber holds messages by then) and its return 1 s
// before the end, so every recovery happens under load.
const dropWindowMs = seconds * 1000 - 3000 - awayMax;
if (awayMax < awayMin || dropWindowMs < 1000) {
  usageError('bench-recovery', `--away-max-ms must be at least --away-min-ms and leave 4 s of --seconds (${seconds} s) for the drops (got ${awayMin}..${awayMax})`);
}
if (subscriberCount > 18_000) {
  usageError('bench-recovery', `--subscribers must be at most 18000 (one process holds them, and may hold 20,000 open files), got ${subscriberCount}`);
}

const redis = new Redis(args.redis, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
redis.on('error', () => undefined);
try {
  await redis.connect();
} catch (err) {
  console.error(`bench-recovery: cannot reach Redis at ${args.redis} (--redis): ${(err as Error).message}`);
  process.exit(1);
}

const name = `recovery-${stamp()}`;
const prefix = `recovery${randomBytes(3).toString('hex')}`;
const channels = Array.from({ length: channelCount }, (_, i) => `room-${i}`);
mkdirSync(args.out, { recursive: true });

console.log(`bench-recovery: ${subscriberCount} subscribers on ${channelCount} channels over 2 instances (Redis ${args.redis}, --history ${args.history}), 1 publisher at ${rate} msg/s for ${seconds} s; each drops once and comes back on the other instance after ${awayMin}-${awayMax} ms`);
const host: HostCheck = await checkHost(BENCH_HOST_CHECK_S);
console.log(hostLine(host));

const bridged = serverArgs({ redis: args.redis, prefix, history: args.history as number });
const servers: ServerProcess[] = [];
let exit = 1;
try {
  servers.push(await startServerProcess('ours', bridged), await startServerProcess('ours', bridged));
  console.log(servers[0].engine);
  exit = await run(servers);
} finally {
  await Promise.all(servers.map((s) => s.stop()));
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
}
finishBench(args, exit !== 0);

async function run([a, b]: ServerProcess[]): Promise<number> {
  // Subscriber i: channel i mod channels, first on instance i mod 2, back on the other one.
  const plans: SubscriberPlan[] = Array.from({ length: subscriberCount }, (_, i) => ({
    channel: channels[i % channelCount],
    first: i % 2 === 0 ? a.url : b.url,
    second: i % 2 === 0 ? b.url : a.url,
    dropAtMs: 2000 + Math.random() * dropWindowMs,
    awayMs: awayMin + Math.random() * (awayMax - awayMin),
  }));
  const child = fork(new URL('../clients/subscribers/recovery-subscribers.js', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const inbox: FromSubscribers[] = [];
  let wake: (() => void) | null = null;
  child.on('message', (m: FromSubscribers) => {
    if (m.type === 'progress') progress = m;
    else inbox.push(m);
    wake?.();
  });
  child.on('exit', () => wake?.());
  const next = async (): Promise<FromSubscribers | null> => {
    while (inbox.length === 0 && child.exitCode === null && child.signalCode === null) await new Promise<void>((resolve) => (wake = resolve));
    return inbox.shift() ?? null;
  };
  const tell = (m: ToSubscribers): void => void child.send(m);
  let progress: { dropped: number; back: number } = { dropped: 0, back: 0 };

  tell({ type: 'start', plans });
  const subscribed = await next();
  if (subscribed?.type !== 'subscribed') {
    console.error(`bench-recovery: the subscribers could not subscribe: ${subscribed?.type === 'failed' ? subscribed.error : 'their process exited'}`);
    child.kill();
    return 1;
  }
  console.log(`${subscribed.count} subscribers subscribed; publishing`);

  // CPU of each side, sampled every 500 ms: the peak share of a core of each process.
  const pids = { server: [a.pid, b.pid], subscribers: child.pid ?? 0, publisher: process.pid };
  const all = [...pids.server, pids.subscribers, pids.publisher];
  const last = new Map(all.map((pid) => [pid, sampleProcess(pid)?.cpuMicros ?? NaN]));
  let lastAt = performance.now();
  const peak = new Map(all.map((pid) => [pid, 0]));
  let machinePeak = 0;
  const sampler = setInterval(() => {
    const now = performance.now();
    let sum = 0;
    for (const pid of all) {
      const cpu = sampleProcess(pid)?.cpuMicros ?? NaN;
      const pct = ((cpu - (last.get(pid) ?? NaN)) / ((now - lastAt) * 1000)) * 100;
      if (Number.isFinite(pct)) {
        peak.set(pid, Math.max(peak.get(pid) ?? 0, pct));
        sum += pct;
      }
      last.set(pid, cpu);
    }
    machinePeak = Math.max(machinePeak, sum);
    lastAt = now;
  }, 500);

  const publisher = await publisherOn(a.url);
  tell({ type: 'go' });
  const started = performance.now();
  const ticker = setInterval(() => {
    const elapsed = (performance.now() - started) / 1000;
    console.log(
      `  ${elapsed.toFixed(0)} s: published ${publisher.sent}, acked ${publisher.acked}; subscribers dropped ${progress.dropped}/${subscriberCount}, back ${progress.back}`,
    );
  }, 2000);
  // Paced by a fixed schedule: at each tick, what is due by now goes out.
  while (!interrupted()) {
    const elapsed = (performance.now() - started) / 1000;
    if (elapsed >= seconds) break;
    const due = Math.floor(elapsed * rate);
    while (publisher.sent < due) publisher.publish(channels[publisher.sent % channelCount]);
    await interruptibleSleep(5);
  }
  const publishedFor = (performance.now() - started) / 1000;
  const acked = await publisher.settle(5000);
  clearInterval(ticker);
  const keptRate = acked / publishedFor;
  console.log(`published ${publisher.sent} in ${publishedFor.toFixed(1)} s, ${acked} acked (${Math.round(keptRate)} msg/s kept of ${rate} offered), ${publisher.errors} errors`);

  tell({ type: 'finish', finals: publisher.perChannel, timeoutMs: args.catchUpMs as number });
  const report = await next();
  clearInterval(sampler);
  publisher.close();
  if (report?.type !== 'results') {
    console.error('bench-recovery: the subscribers\' process exited before its report');
    return 1;
  }
  return judge(report.results, report.caughtUp, publisher, acked, keptRate, { peak, machinePeak, pids });
}

interface Publisher {
  sent: number;
  acked: number;
  errors: number;
  /** Acked messages per channel: each channel's last offset, since the run's prefix starts every channel at 1. */
  perChannel: Record<string, number>;
  publish(channel: string): void;
  /** Waits up to `ms` for every ack; returns how many came. */
  settle(ms: number): Promise<number>;
  close(): void;
}

async function publisherOn(url: string): Promise<Publisher> {
  const ws = new WebSocket(`${url}/pubsub`);
  await new Promise<void>((resolve, reject) => {
    ws.once('message', () => resolve()); // the welcome
    ws.once('error', reject);
  });
  const channelOf: string[] = [];
  const p: Publisher = {
    sent: 0,
    acked: 0,
    errors: 0,
    perChannel: Object.fromEntries(channels.map((c) => [c, 0])),
    publish(channel) {
      channelOf.push(channel);
      ws.send(`{"action":"publish","payload":{"channel":"${channel}","message":{"n":${p.sent}}},"id":${p.sent}}`);
      p.sent++;
    },
    async settle(ms) {
      const deadline = Date.now() + ms;
      while (p.acked + p.errors < p.sent && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      return p.acked;
    },
    close: () => ws.close(),
  };
  ws.on('message', (data) => {
    const frame = JSON.parse(String(data)) as { event: string; id: number };
    if (frame.event === 'published') {
      p.acked++;
      p.perChannel[channelOf[frame.id]]++;
    } else if (frame.event === 'error') p.errors++;
  });
  return p;
}

interface Cpu {
  peak: Map<number, number>;
  machinePeak: number;
  pids: { server: number[]; subscribers: number; publisher: number };
}

function judge(results: SubscriberResult[], caughtUp: boolean, publisher: Publisher, acked: number, keptRate: number, cpu: Cpu): number {
  const recovery = newHistogram();
  const replayed: number[] = [];
  let exact = 0;
  for (const r of results) {
    const final = publisher.perChannel[r.channel];
    const whole = r.last === final && r.received - r.duplicates === final && r.duplicates === 0 && r.missed === 0 && r.epochChanges === 0;
    if (whole && r.dropped && r.recovered === true && r.error === null) exact++;
    if (r.recoveryMs !== null) {
      record(recovery, r.recoveryMs * 1000);
      replayed.push(r.replayed);
    }
  }
  const sum = (key: 'duplicates' | 'missed' | 'epochChanges'): number => results.reduce((n, r) => n + r[key], 0);
  const recoveredTrue = results.filter((r) => r.recovered === true).length;
  const recoveredFalse = results.filter((r) => r.recovered === false).length;
  const dropped = results.filter((r) => r.dropped).length;
  const errors = results.filter((r) => r.error !== null);
  const t = summarize(recovery);
  replayed.sort((x, y) => x - y);
  const rank = (p: number): number | null => (replayed.length === 0 ? null : replayed[Math.min(replayed.length - 1, Math.ceil((p / 100) * replayed.length) - 1)]);
  const rp = replayed.length === 0 ? null : { p50: rank(50)!, p99: rank(99)!, max: replayed[replayed.length - 1] };
  const serverPct = Math.max(...cpu.pids.server.map((pid) => cpu.peak.get(pid) ?? 0));
  const subscribersPct = cpu.peak.get(cpu.pids.subscribers) ?? 0;
  const publisherPct = cpu.peak.get(cpu.pids.publisher) ?? 0;
  const verdict = saturation(serverPct, Math.max(subscribersPct, publisherPct), cpu.machinePeak);

  console.log('');
  console.log(`recovery (new connection to the subscribed ack, replay included): p50 ${t?.p50.toFixed(2) ?? '-'} p99 ${t?.p99.toFixed(2) ?? '-'} max ${t?.max.toFixed(2) ?? '-'} ms over ${t?.count ?? 0} recoveries`);
  console.log(`replayed per recovery: p50 ${rp ? rp.p50 : '-'}, p99 ${rp ? rp.p99 : '-'}, max ${rp ? rp.max : '-'} messages`);
  console.log(`subscribers: ${exact}/${results.length} hold every message of their channel exactly once, in order; dropped ${dropped}, recovered:true ${recoveredTrue}, recovered:false ${recoveredFalse}; duplicates ${sum('duplicates')}, missed ${sum('missed')}, epoch changes ${sum('epochChanges')}; ${caughtUp ? 'all caught up' : 'NOT all caught up'} within ${String(args.catchUpMs)} ms`);
  if (errors.length > 0) console.log(`errors (${errors.length}), first: ${errors[0].error}`);
  console.log(`cpu peak: busiest server ${Math.round(serverPct)}%, subscribers' process ${Math.round(subscribersPct)}%, publisher ${Math.round(publisherPct)}%, all ${Math.round(cpu.machinePeak)}%; saturated: ${verdict}`);

  const targets: Target[] = [
    { name: 'every subscriber ends with every message exactly once, in order', measured: `${exact}/${results.length}`, pass: exact === results.length && !interrupted() },
    { name: 'every return is recovered:true', measured: `${recoveredTrue}/${dropped}`, pass: recoveredTrue === dropped && dropped === results.length },
    { name: 'publish rate kept >= 95% of offered', measured: `${Math.round(keptRate)} of ${rate} msg/s`, pass: keptRate >= 0.95 * rate },
  ];
  console.log('');
  for (const line of targetLines(targets)) console.log(line);

  const row: Row = {
    run: name, subscribers: results.length, channels: channelCount, instances: 2, history: args.history as number, seconds, away_min_ms: awayMin, away_max_ms: awayMax,
    rate_offered: rate, rate_kept: Math.round(keptRate), published: publisher.sent, acked, publish_errors: publisher.errors,
    exact, dropped, recovered_true: recoveredTrue, recovered_false: recoveredFalse, duplicates: sum('duplicates'), missed: sum('missed'), epoch_changes: sum('epochChanges'),
    subscriber_errors: errors.length, caught_up: caughtUp ? 1 : 0,
    recovery_p50_ms: t?.p50 ?? null, recovery_p99_ms: t?.p99 ?? null, recovery_max_ms: t?.max ?? null,
    replayed_p50: rp ? rp.p50 : null, replayed_p99: rp ? rp.p99 : null,
    server_cpu_max_pct: Math.round(serverPct), subscribers_cpu_max_pct: Math.round(subscribersPct), publisher_cpu_max_pct: Math.round(publisherPct), saturated: verdict,
    passed: targets.every((x) => x.pass) ? 'yes' : 'no', interrupted: interrupted() ? 1 : 0, ...hostColumns(host),
  };
  writeCsv(join(args.out, `${name}.csv`), [row]);
  writeCsv(
    join(args.out, `${name}-subscribers.csv`),
    results.map((r, i) => ({
      subscriber: i, channel: r.channel, received: r.received, last: r.last, final: publisher.perChannel[r.channel], duplicates: r.duplicates, missed: r.missed,
      epoch_changes: r.epochChanges, dropped: r.dropped ? 1 : 0, away_ms: Math.round(r.awayMs), recovered: r.recovered === null ? null : r.recovered ? 1 : 0,
      replayed: r.replayed, recovery_ms: r.recoveryMs === null ? null : Math.round(r.recoveryMs * 100) / 100, error: r.error,
    })),
  );
  appendHistory(join(args.out, 'recovery-history.csv'), row);
  console.log(`wrote ${join(args.out, `${name}.csv`)}, ${name}-subscribers.csv and a row in recovery-history.csv`);
  return exitCode(!targets.every((x) => x.pass));
}
