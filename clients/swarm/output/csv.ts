/**
 * CSV writers, subscribers of the engine: a timeline (a row per second), a one-row summary, and the
 * summary appended to `history.csv`. Columns are fixed and named with their unit so a person can read
 * the files in a spreadsheet without this code.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunSummary, Swarm, TickEvent } from '../swarm.js';
import type { HostCheck } from '../../host/host-check.js';
import { ERROR_KINDS, totalErrors, type LatencySummary } from '../metrics.js';
import { ownership, TIMED_LATENCIES } from '../harness-share.js';
import { checkTotals } from '../named-metrics.js';
import { scenarioLabel } from '../options.js';

export type Row = Record<string, string | number | null>;

/** `20261124-153012`, local time: sortable and safe in file names. */
export function stamp(date = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
}

function cell(value: string | number | null): string {
  if (value === null || (typeof value === 'number' && !Number.isFinite(value))) return '';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(3);
  return /[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function csvLine(values: (string | number | null)[]): string {
  return `${values.map(cell).join(',')}\n`;
}

/** Writes rows (all with the same keys) to a new file. */
/** Writes rows as CSV; the columns are every key of any row, in order of first appearance (a row without one leaves it empty). */
export function writeCsv(path: string, rows: Row[]): void {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  writeFileSync(path, rows.length === 0 ? '' : csvLine(columns) + rows.map((row) => csvLine(columns.map((key) => row[key] ?? null))).join(''));
}

/**
 * Appends a row to a history file. When the columns changed since the file was started, the old file is
 * kept beside it under a dated name and a new one begins, so no figure is lost or misaligned.
 */
export function appendHistory(path: string, row: Row): void {
  const header = csvLine(Object.keys(row));
  if (existsSync(path)) {
    const first = readFileSync(path, 'utf8').split('\n', 1)[0] + '\n';
    if (first !== header) renameSync(path, path.replace(/\.csv$/, `-until-${stamp()}.csv`));
  }
  if (!existsSync(path)) writeFileSync(path, header);
  appendFileSync(path, csvLine(Object.values(row)));
}

export function timelineRow(tick: TickEvent): Row {
  const c = tick.counters;
  return {
    second: tick.second,
    connected: c.connected,
    opening: c.opening,
    failed: c.failed,
    closed: c.closed,
    completed: c.completed,
    sent: c.sent,
    received: c.received,
    received_per_s: Math.round(tick.receivedPerSecond),
    rtt_p50_ms: tick.rtt?.p50 ?? null,
    rtt_p99_ms: tick.rtt?.p99 ?? null,
    slow_p50_ms: tick.slow?.p50 ?? null,
    slow_p99_ms: tick.slow?.p99 ?? null,
    fanout_p50_ms: tick.fanout?.p50 ?? null,
    fanout_p99_ms: tick.fanout?.p99 ?? null,
    errors: totalErrors(c),
    checks_passed: tick.checks.passed,
    checks_failed: tick.checks.failed,
    stage: tick.stage?.number ?? null,
    stage_target: tick.stage?.target ?? null,
    server_cpu_pct: tick.server ? Math.round(tick.server.cpuPct * 10) / 10 : null,
    server_rss_mib: tick.server ? Math.round((tick.server.rssBytes / 2 ** 20) * 10) / 10 : null,
    client_rss_mib: mib(tick.memory.clientRssBytes),
    kernel_slab_mib: mib(tick.memory.slabBytes),
    client_cpu_pct: Math.round(tick.clientCpuPct * 10) / 10,
    client_cpu_max_pct: Math.round(tick.clientCpuMaxPct * 10) / 10,
    client_loop_delay_max_ms: Math.round(tick.loopDelayMaxMs * 10) / 10,
    client_loop_delay_p99_ms: tick.loop?.p99 ?? null,
  };
}

const mib = (bytes: number | null): number | null => (bytes === null ? null : Math.round((bytes / 2 ** 20) * 10) / 10);

const latency = (prefix: string, l: LatencySummary | null, keys: (keyof LatencySummary)[]): Row =>
  Object.fromEntries(keys.map((key) => [`${prefix}_${key}_ms`, l ? l[key] : null]));

/** What bench-swarm measures the swarm's CPU per operation to be, µs (see bench/swarm.ts). */
export interface SwarmCosts {
  connect: number | null;
  rtt: number | null;
  close: number | null;
  frame: number | null;
}

/**
 * The summary row; `label` names the server (ours, baseline, a URL). `costs` are bench-swarm's; the
 * columns are there, empty, in every other run's row, so all runs share history.csv.
 */
export function summaryRow(s: RunSummary, label: string, run: string, costs?: SwarmCosts): Row {
  const c = s.counters;
  const o = s.options;
  const checks = checkTotals(s.checks);
  return {
    run,
    server: label,
    scenario: scenarioLabel(o.scenario),
    url: s.url,
    clients: o.clients,
    workers: o.workers,
    source_addresses: o.sourceAddresses.length,
    ramp_s: o.ramp,
    delay_s: o.delay,
    rounds: o.rounds,
    completed: c.completed,
    errors: totalErrors(c),
    ...Object.fromEntries(ERROR_KINDS.map((kind) => [`err_${kind}`, c.errors[kind]])),
    ...latency('connect', s.connect, ['p50', 'p99', 'max']),
    connect_rate_per_s: Math.round(s.connectRate),
    offered_connect_rate_per_s: Number.isFinite(s.offeredConnectRate) ? Math.round(s.offeredConnectRate) : null,
    ...latency('rtt', s.rtt, ['p50', 'p90', 'p99', 'p999', 'max']),
    ...latency('slow', s.slow, ['p50', 'p99', 'max']),
    ...latency('fanout', s.fanout, ['p50', 'p99', 'max']),
    sent: c.sent,
    received: c.received,
    published: c.published,
    delivered: c.delivered,
    lost_deliveries: s.lostDeliveries,
    own_lost: c.ownLost,
    checks_passed: checks.passed,
    checks_failed: checks.failed,
    timings: Object.keys(s.timings).length,
    thresholds_failed: s.thresholds.filter((t) => !t.pass).length,
    peak_connected: s.peakConnected,
    server_rss_rest_mib: s.server ? Math.round((s.server.rssRestBytes / 2 ** 20) * 10) / 10 : null,
    server_rss_peak_mib: s.server ? Math.round((s.server.rssPeakBytes / 2 ** 20) * 10) / 10 : null,
    server_bytes_per_conn: s.server?.bytesPerConnection != null ? Math.round(s.server.bytesPerConnection) : null,
    client_rss_peak_mib: mib(s.memory.clientRssPeakBytes),
    client_bytes_per_conn: s.memory.client.bytesPerConnection !== null ? Math.round(s.memory.client.bytesPerConnection) : null,
    kernel_slab_rest_mib: mib(s.memory.slabRestBytes),
    kernel_slab_peak_mib: mib(s.memory.slabPeakBytes),
    kernel_bytes_per_conn: s.memory.kernel.bytesPerConnection !== null ? Math.round(s.memory.kernel.bytesPerConnection) : null,
    server_cpu_max_pct: s.server ? Math.round(s.server.cpuMaxPct) : null,
    client_cpu_max_pct: Math.round(s.clientCpuMaxPct),
    swarm_cpu_s: Math.round(s.swarmCpuS * 1000) / 1000,
    swarm_cpu_ms_per_client: Math.round((s.swarmCpuS / o.clients) * 1e6) / 1000,
    swarm_us_per_connect: costs?.connect ?? null,
    swarm_us_per_rtt: costs?.rtt ?? null,
    swarm_us_per_close: costs?.close ?? null,
    swarm_us_per_frame: costs?.frame ?? null,
    client_loop_delay_max_ms: Math.round(s.clientLoopDelayMaxMs),
    ...latency('client_loop_delay', s.loop, ['p50', 'p99']),
    ...Object.fromEntries(TIMED_LATENCIES.flatMap((name) => {
      const verdict = ownership(s[name], s.loop);
      return [[`${name}_owner`, verdict?.owner ?? null], [`${name}_swarm_share`, verdict ? Math.round(verdict.share * 1000) / 1000 : null]];
    })),
    saturated: s.saturated,
    duration_s: Math.round(s.durationS * 10) / 10,
    interrupted: s.interrupted ?? '',
    client_sockets: s.clientSockets,
    ...hostColumns(s.host),
  };
}

/**
 * A run's named figures, a row each: a user scenario's timings (percentiles in ms) and checks (passed,
 * failed, the share passed), every --threshold (the figure measured, passed 1 or failed 1), and its
 * stages in order (count: the stage's number, as the timeline's `stage` column gives it).
 */
export function scenarioMetricRows(s: RunSummary): Row[] {
  return [
    ...Object.entries(s.timings).map(([name, l]): Row => ({
      kind: 'timing', name, count: l.count, min_ms: l.min, mean_ms: l.mean, p50_ms: l.p50, p90_ms: l.p90, p99_ms: l.p99, p999_ms: l.p999, max_ms: l.max,
    })),
    ...Object.entries(s.checks).map(([name, k]): Row => ({ kind: 'check', name, count: k.passed + k.failed, passed: k.passed, failed: k.failed, passed_share: k.passed / (k.passed + k.failed) })),
    ...s.thresholds.map((t): Row => ({ kind: 'threshold', name: t.threshold, measured: t.measured, passed: t.pass ? 1 : 0, failed: t.pass ? 0 : 1 })),
    ...s.options.stage.map((stage, i): Row => ({ kind: 'stage', name: stage, count: i + 1 })),
  ];
}

/** The host check's figures as CSV columns (empty without one). */
export function hostColumns(host: HostCheck | null): Row {
  return {
    host_stalled_pct: host ? Math.round(host.stalledPct * 100) / 100 : null,
    host_longest_stall_ms: host ? Math.round(host.longestStallMs * 100) / 100 : null,
    host_reference_ms: host ? Math.round(host.referenceMs) : null,
  };
}

export interface CsvOptions {
  /** Directory for the files; created if missing. */
  dir: string;
  /** File name prefix, e.g. `c10k-20261124-153012`. */
  name: string;
  /** Server label for the summary. */
  label: string;
  /** Also append the summary to `<dir>/history.csv`. Default true. */
  history?: boolean;
}

/** The paths `attachCsv` writes. */
export interface CsvPaths {
  timeline: string;
  summary: string;
  history: string | null;
  /** A user scenario's named timings per second (second, name, count, p50, p99), a row each: written when one is recorded. */
  timings: string;
  /** A user scenario's timings and checks over the run ({@link scenarioMetricRows}): written when it has any. */
  metrics: string;
}

/** Writes the timeline as the run goes, and the summary (and history row) when it is done. */
export function attachCsv(swarm: Swarm, options: CsvOptions): CsvPaths {
  mkdirSync(options.dir, { recursive: true });
  const paths: CsvPaths = {
    timeline: join(options.dir, `${options.name}-timeline.csv`),
    summary: join(options.dir, `${options.name}-summary.csv`),
    history: options.history === false ? null : join(options.dir, 'history.csv'),
    timings: join(options.dir, `${options.name}-timings.csv`),
    metrics: join(options.dir, `${options.name}-metrics.csv`),
  };
  let headerWritten = false;
  let timingsStarted = false;
  swarm.on('tick', (tick: TickEvent) => {
    const row = timelineRow(tick);
    if (!headerWritten) writeFileSync(paths.timeline, csvLine(Object.keys(row)));
    headerWritten = true;
    appendFileSync(paths.timeline, csvLine(Object.values(row)));
    const timings = Object.entries(tick.timings);
    if (timings.length === 0) return;
    if (!timingsStarted) writeFileSync(paths.timings, csvLine(['second', 'name', 'count', 'p50_ms', 'p99_ms', 'max_ms']));
    timingsStarted = true;
    appendFileSync(paths.timings, timings.map(([name, l]) => csvLine([tick.second, name, l.count, l.p50, l.p99, l.max])).join(''));
  });
  swarm.on('done', (summary: RunSummary) => {
    const row = summaryRow(summary, options.label, options.name);
    writeCsv(paths.summary, [row]);
    if (paths.history) appendHistory(paths.history, row);
    const metrics = scenarioMetricRows(summary);
    if (metrics.length > 0) writeCsv(paths.metrics, metrics);
  });
  return paths;
}

/** A CSV row read back: every value as its text ('' for an empty cell). */
export type CsvRecord = Record<string, string>;

/** Reads a CSV this module wrote (quoted cells with doubled quotes, as `csvLine` writes them). */
export function readCsv(path: string): CsvRecord[] {
  const text = readFileSync(path, 'utf8');
  const records: string[][] = [];
  let row: string[] = [];
  let cellText = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cellText += '"'), i++;
      else if (c === '"') quoted = false;
      else cellText += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(cellText), (cellText = '');
    else if (c === '\n') row.push(cellText), records.push(row), (row = []), (cellText = '');
    else cellText += c;
  }
  if (cellText !== '' || row.length > 0) records.push([...row, cellText]);
  const [header, ...rows] = records;
  if (!header) return [];
  return rows.map((values) => Object.fromEntries(header.map((key, i) => [key, values[i] ?? ''])));
}
