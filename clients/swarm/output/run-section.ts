/**
 * One swarm run as the report draws it, from its ticks: the charts the live dashboard (dashboard.ts)
 * fills second by second, and the same charts filled with the whole run for its static report. A tick
 * becomes one flat row ({@link liveRow}); each chart's datasets name the row keys they plot, so the page
 * and the report read the same figures the same way.
 */
import type { RunSummary, TickEvent } from '../swarm.js';
import type { ChartSpec, Section } from './report.js';
import { summaryLines } from './summary.js';
import { totalErrors } from '../metrics.js';
import { runsVirtualUsers } from '../stages.js';

/** A tick's figures, flat: what each chart's datasets plot. Named timings as `timing:<name>:p50` and `:p99`. */
export type LiveRow = Record<string, number | string | null>;

/** A chart whose datasets are filled from row keys (`keys[i]` feeds `datasets[i]`). */
export interface LiveChart extends ChartSpec {
  keys: string[];
}

/** The prefix of a named timing's keys in a row, and its p99 key. */
export const TIMING_KEY = 'timing:';
export const timingKey = (name: string, stat: 'p50' | 'p99'): string => `${TIMING_KEY}${name}:${stat}`;

const round1 = (value: number): number => Math.round(value * 10) / 10;

export function liveRow(tick: TickEvent, previous: TickEvent | null): LiveRow {
  const c = tick.counters;
  const sentPerSecond = previous ? Math.max(0, c.sent - previous.counters.sent) : c.sent;
  const machine = tick.clientCpuPct + (tick.server?.cpuPct ?? 0);
  const row: LiveRow = {
    second: tick.second,
    connected: c.connected,
    opening: c.opening,
    failed: c.failed,
    completed: c.completed,
    errors: totalErrors(c),
    sent_per_s: sentPerSecond,
    received_per_s: Math.round(tick.receivedPerSecond),
    rtt_p50: tick.rtt?.p50 ?? null,
    rtt_p99: tick.rtt?.p99 ?? null,
    fanout_p99: tick.fanout?.p99 ?? null,
    loop_p99: tick.loop?.p99 ?? null,
    checks_passed: tick.checks.passed,
    checks_failed: tick.checks.failed,
    server_cpu: tick.server ? round1(tick.server.cpuPct) : null,
    server_busiest_cpu: tick.server ? round1(tick.server.busiestPct) : null,
    swarm_cpu: round1(tick.clientCpuPct),
    swarm_busiest_cpu: round1(tick.clientCpuMaxPct),
    machine_cpu: round1(machine),
    stage: tick.stage?.number ?? null,
    stage_target: tick.stage?.target ?? null,
  };
  for (const [name, l] of Object.entries(tick.timings)) {
    row[timingKey(name, 'p50')] = l.p50;
    row[timingKey(name, 'p99')] = l.p99;
  }
  return row;
}

/** The charts of a run, empty; `timings` are the named timings known so far (the page adds later ones itself). */
export function runCharts(timings: string[]): LiveChart[] {
  const chart = (id: string, title: string, y: string, series: [string, string, ('y1')?][], y1?: string): LiveChart => ({
    id, title, type: 'line', labels: [], x: 'second', y, y1, keys: series.map(([key]) => key),
    datasets: series.map(([, label, axis]) => ({ label, data: [], ...(axis ? { yAxisID: axis } : {}) })),
  });
  return [
    chart('live-connections', 'Connections (and the stages\' target)', 'clients', [
      ['connected', 'connected'], ['opening', 'opening'], ['completed', 'completed'], ['failed', 'connects failed'], ['stage_target', 'stage target'],
    ]),
    chart('live-rates', 'Frames per second', 'frames/s', [['sent_per_s', 'sent'], ['received_per_s', 'received']]),
    chart('live-latency', 'Latencies of each second: p50 and p99', 'ms', [
      ['rtt_p50', 'rtt p50'], ['rtt_p99', 'rtt p99'], ['fanout_p99', 'fanout p99'], ['loop_p99', "swarm's own loop delay p99"],
      ...timings.flatMap((name): [string, string][] => [[timingKey(name, 'p50'), `${name} p50`], [timingKey(name, 'p99'), `${name} p99`]]),
    ]),
    chart('live-checks', 'Checks and errors so far', 'count', [['checks_passed', 'checks passed'], ['checks_failed', 'checks failed'], ['errors', 'clients failed']]),
    chart('live-cpu', 'CPU: server and swarm (% of one core)', '% of one core', [
      ['server_cpu', 'server, all processes'], ['server_busiest_cpu', 'server, busiest process'], ['swarm_cpu', 'swarm, all processes'], ['swarm_busiest_cpu', 'swarm, busiest process'], ['machine_cpu', 'both together'],
    ]),
  ];
}

/** The charts filled with every row of a run. */
export function filledCharts(charts: LiveChart[], rows: LiveRow[]): ChartSpec[] {
  return charts.map(({ keys, ...chart }) => ({
    ...chart,
    labels: rows.map((r) => r.second as number),
    datasets: chart.datasets.map((d, i) => ({ ...d, data: rows.map((r) => (typeof r[keys[i]] === 'number' ? (r[keys[i]] as number) : null)) })),
  }));
}

/** The static report's section of one run: its charts over the whole run, and its printed summary as a table. */
export function runSection(ticks: TickEvent[], summary: RunSummary, label: string): Section {
  const rows = ticks.map((tick, i) => liveRow(tick, ticks[i - 1] ?? null));
  return {
    id: 'run',
    title: `This run: ${summary.options.scenario}, ${summary.options.clients} ${runsVirtualUsers(summary.options.stage) ? 'virtual users' : 'clients'}`,
    source: `${ticks.length} s; saturated: ${summary.saturated}`,
    charts: filledCharts(runCharts(Object.keys(summary.timings)), rows),
    table: [['summary'], ...summaryLines(summary, label).map((line) => [line])],
  };
}
