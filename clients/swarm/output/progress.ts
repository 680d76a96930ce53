/**
 * The progress display, a subscriber of the engine: on a terminal one live line redrawn every second;
 * without one (CI, a pipe) a plain line every few seconds. Both go to stderr, so stdout carries only the
 * peak line and the summary. The peak is announced as django-c10k-demo does.
 */
import type { StartEvent, Swarm, TickEvent } from '../swarm.js';
import { totalErrors } from '../metrics.js';

export interface ProgressOptions {
  /** Draw a live line; default: whether stderr is a terminal. */
  live?: boolean;
  /** Seconds between plain lines when not live. Default 5. */
  everySeconds?: number;
  /** Where plain and live lines go. Default stderr. */
  stream?: NodeJS.WritableStream;
}

export function attachProgress(swarm: Swarm, options: ProgressOptions = {}): void {
  const stream = options.stream ?? process.stderr;
  const live = options.live ?? Boolean((stream as NodeJS.WriteStream).isTTY);
  const every = options.everySeconds ?? 5;
  let drawn = false;
  const clear = (): void => {
    if (live && drawn) stream.write('\r\x1b[K');
    drawn = false;
  };
  swarm.on('start', (start: StartEvent) => {
    const o = swarm.options;
    const from = start.agents?.length ? `on agents ${start.agents.join(', ')}` : `from ${o.sourceAddresses.join(',') || 'the default address'}`;
    const stages = o.stage.length > 0 ? `, stages ${o.stage.join(' ')}` : '';
    stream.write(`swarm: ${o.clients} clients, scenario ${o.scenario}${stages}, ${o.workers} worker(s), ${from} to ${swarm.url}; stops after ${o.timeout} s at most\n`);
  });
  swarm.on('tick', (tick: TickEvent) => {
    if (live) {
      stream.write(`\r\x1b[K${progressLine(tick, swarm.options.clients)}`);
      drawn = true;
    } else if (tick.second % every === 0) {
      stream.write(`${progressLine(tick, swarm.options.clients)}\n`);
    }
  });
  swarm.on('peak', ({ connected }: { connected: number }) => {
    clear();
    console.log(`${connected} clients are connected!`);
  });
  swarm.on('error-sample', (line: string) => {
    clear();
    stream.write(`  ${line}\n`);
  });
  swarm.on('done', clear);
}

/** `t=12s connected 5000/10000 opening 3 failed 0 ... ` */
export function progressLine(tick: TickEvent, target: number): string {
  const c = tick.counters;
  // The run's own latencies first; a user scenario's first named timing when it has none.
  const latency = tick.rtt ?? tick.slow ?? tick.fanout ?? Object.values(tick.timings)[0] ?? null;
  const parts = [
    `t=${tick.second}s`,
    ...(tick.stage ? [`stage ${tick.stage.number} target ${tick.stage.target}`] : []),
    `connected ${c.connected}/${target}`,
    `opening ${c.opening}`,
    `failed ${c.failed}`,
    `done ${c.completed}`,
    `sent ${c.sent} recv ${c.received} (${Math.round(tick.receivedPerSecond)}/s)`,
    latency ? `p50 ${latency.p50.toFixed(2)} ms p99 ${latency.p99.toFixed(2)} ms` : 'p50 - p99 -',
    `errors ${totalErrors(c)}`,
    ...(tick.checks.rate !== null ? [`checks ${(tick.checks.rate * 100).toFixed(2)}% of ${tick.checks.passed + tick.checks.failed}`] : []),
    `cpu swarm ${Math.round(tick.clientCpuPct)}%`,
  ];
  if (tick.server) parts.push(`server ${Math.round(tick.server.cpuPct)}% ${(tick.server.rssBytes / 2 ** 20).toFixed(0)} MiB`);
  return parts.join('  ');
}
