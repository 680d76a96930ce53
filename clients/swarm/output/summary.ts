/** The printed summary of a run, and target checks that benchmarks print beside their figures. */
import type { RunSummary } from '../swarm.js';
import type { MemoryFit } from '../memory-fit.js';
import { hostLine } from '../../host/host-check.js';
import { ERROR_KINDS, totalErrors, type LatencySummary } from '../metrics.js';
import { ownership, ownershipText, TIMED_LATENCIES } from '../harness-share.js';
import { checkTotals } from '../named-metrics.js';
import { runsVirtualUsers } from '../stages.js';

const ms = (l: LatencySummary | null, keys: (keyof LatencySummary)[]): string =>
  l ? keys.map((key) => `${key} ${l[key].toFixed(2)}`).join('  ') + ' ms' : 'none';

/** Lines describing the run, for stdout. */
export function summaryLines(s: RunSummary, label: string): string[] {
  const c = s.counters;
  const errors = totalErrors(c);
  const o = s.options;
  // Concurrency stages run virtual users, each its scenario again and again: completed counts runs.
  const virtualUsers = runsVirtualUsers(o.stage);
  const lines = [
    `== ${label}: ${o.scenario}, ${o.clients} ${virtualUsers ? 'virtual users' : 'clients'}${o.stage.length > 0 ? ` (stages ${o.stage.join(' ')})` : ''}, ${s.durationS.toFixed(1)} s, client sockets: ${s.clientSockets}${
      s.interrupted ? `   INTERRUPTED (${s.interrupted}): the figures cover the run until then` : ''
    }`,
    `completed ${virtualUsers ? `${c.completed} runs of the scenario` : `${c.completed}/${o.clients}`}   errors ${errors}${
      errors ? ` (${ERROR_KINDS.filter((k) => c.errors[k]).map((k) => `${k} ${c.errors[k]}`).join(', ')})` : ''
    }   peak connected ${s.peakConnected}${
      s.options.agents > 0 ? `   agents ${s.options.agents}${s.lostAgents?.length ? `, LOST: ${s.lostAgents.join(', ')} (stopped reporting; their clients count as errors)` : ''}` : ''
    }`,
    `connect  ${ms(s.connect, ['p50', 'p99', 'max'])}   rate ${Math.round(s.connectRate)}/s (${
      o.stage.length > 0 ? 'as the stages asked' : `ramp offered ${Number.isFinite(s.offeredConnectRate) ? Math.round(s.offeredConnectRate) : 'all at once'}`
    })`,
  ];
  if (s.rtt) lines.push(`rtt      ${ms(s.rtt, ['p50', 'p90', 'p99', 'p999', 'max'])}   (${s.rtt.count} round trips)`);
  if (s.slow) lines.push(`slow     ${ms(s.slow, ['min', 'p50', 'p99', 'max'])}   (${s.slow.count} replies)`);
  if (s.fanout) lines.push(`fanout   ${ms(s.fanout, ['min', 'p50', 'p99', 'max'])}   (${s.fanout.count} broadcast copies, from due to arrival)`);
  if (s.lag) lines.push(`lag      ${ms(s.lag, ['p50', 'p99', 'p999', 'max'])}   (${s.lag.count} messages, from due to sent: the swarm's own part of the latency)`);
  lines.push(...scenarioLines(s));
  lines.push(...ownershipLines(s));
  if (s.expectedDeliveries !== null) {
    lines.push(`deliveries ${c.delivered}/${s.expectedDeliveries} (lost ${s.lostDeliveries}), published ${c.published}, own messages lost ${c.ownLost}`);
  }
  const server = s.server
    ? `server cpu max ${Math.round(s.server.cpuMaxPct)}%, rss ${(s.server.rssRestBytes / 2 ** 20).toFixed(1)} -> ${(s.server.rssPeakBytes / 2 ** 20).toFixed(1)} MiB${
        s.server.bytesPerConnection !== null
          ? ` (${Math.round(s.server.bytesPerConnection)} B per connection, fitted over ${s.server.memoryPoints} s of ramp)`
          : ` (per connection: N/A, ${s.server.memoryFitMissing ?? 'no fit'})`
      }`
    : 'server cpu/rss unknown (no --server-pid)';
  if (s.host) lines.push(hostLine(s.host));
  lines.push(memoryLine(s));
  lines.push(...thresholdLines(s));
  lines.push(`${server};   busiest swarm process ${Math.round(s.clientCpuMaxPct)}% of a core (its threads together), swarm cpu ${s.swarmCpuS.toFixed(1)} s (${((s.swarmCpuS / s.options.clients) * 1000).toFixed(3)} ms per client), event-loop delay max ${Math.round(s.clientLoopDelayMaxMs)} ms;   saturated: ${s.saturated}`);
  return lines;
}

/** A user scenario's named timings, its checks, and what its code threw. */
export function scenarioLines(s: RunSummary): string[] {
  const lines = Object.entries(s.timings).map(([name, l]) => `time     ${name}: ${ms(l, ['p50', 'p90', 'p99', 'max'])}   (${l.count})`);
  const totals = checkTotals(s.checks);
  if (totals.rate !== null) {
    const failing = Object.entries(s.checks).filter(([, c]) => c.failed > 0);
    lines.push(`checks   ${totals.passed}/${totals.passed + totals.failed} passed (${(totals.rate * 100).toFixed(2)}%)${
      failing.length ? `; failed: ${failing.map(([name, c]) => `${name} ${c.failed}/${c.passed + c.failed}`).join(', ')}` : ''
    }`);
  }
  const thrown = Object.entries(s.thrown);
  if (thrown.length) lines.push(`thrown   by the scenario's code: ${thrown.map(([name, count]) => `${name} ${count}`).join(', ')}`);
  return lines;
}

/** Each --threshold judged: `threshold PASS  rtt_p99<50 (measured 12.3)`. */
export function thresholdLines(s: RunSummary): string[] {
  return s.thresholds.map((t) => `threshold ${t.pass ? 'PASS' : 'FAIL'}  ${t.threshold} (${t.measured === null ? 'not measured in this run' : `measured ${Number(t.measured.toFixed(6))}`})`);
}

/** One checked target. */
export interface Target {
  name: string;
  /** The measured figure, as printed. */
  measured: string;
  pass: boolean | null;
  /** Why the target could not be judged in this run, when `pass` is null. */
  note?: string;
}

export function targetLines(targets: Target[]): string[] {
  return targets.map((t) => `target ${t.pass === null ? 'N/A ' : t.pass ? 'PASS' : 'FAIL'}  ${t.name}: ${t.measured}${t.note ? ` (${t.note})` : ''}`);
}

/** The swarm's own loop delay over the measured window, and whose each printed p99 is. */
export function ownershipLines(s: RunSummary): string[] {
  if (!s.loop) return [];
  const lines = [`swarm    loop delay ${ms(s.loop, ['p50', 'p99', 'max'])}   (the swarm's own wait before it read a reply, over the reports that timed one)`];
  for (const name of TIMED_LATENCIES) {
    const latency = s[name];
    const verdict = ownership(latency, s.loop);
    if (latency && verdict) lines.push(`         ${ownershipText(name, latency, s.loop, verdict)}`);
  }
  return lines;
}

/** The swarm's and the kernel's memory per connection, fitted over the ramp like the server's. */
function memoryLine(s: RunSummary): string {
  const fit = (f: MemoryFit): string => (f.bytesPerConnection !== null ? `${Math.round(f.bytesPerConnection)} B per connection` : `per connection: N/A, ${f.why}`);
  const { client, kernel, clientRssPeakBytes, slabRestBytes, slabPeakBytes } = s.memory;
  const swarm = clientRssPeakBytes !== null ? `swarm rss peak ${(clientRssPeakBytes / 2 ** 20).toFixed(1)} MiB (${fit(client)})` : 'swarm rss unknown (workers on agents)';
  const slab = slabRestBytes !== null && slabPeakBytes !== null
    ? `kernel slab ${(slabRestBytes / 2 ** 20).toFixed(1)} -> ${(slabPeakBytes / 2 ** 20).toFixed(1)} MiB (${fit(kernel)}, both sockets on loopback, the whole machine's)`
    : 'kernel slab unknown';
  return `${swarm};   ${slab}`;
}
