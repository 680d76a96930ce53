/**
 * The results report: one self-contained HTML file (Chart.js inlined, the data inlined as JSON) built
 * from the CSVs in results/. It opens offline. Each section takes the newest run of its kind; every
 * figure stands beside the host reference work its run measured first (`host_reference_ms`, lower is
 * a faster core), so a slow host is not taken for slow code.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readCsv, type CsvRecord } from './csv.js';
import { TIMED_LATENCIES } from '../harness-share.js';
import { runsVirtualUsers } from '../stages.js';

/** One chart: Chart.js's own data, and axis titles. */
export interface ChartSpec {
  id: string;
  title: string;
  type: 'line' | 'scatter';
  /** Category labels of the x axis (line charts). */
  labels?: (string | number)[];
  datasets: { label: string; data: (number | null)[] | { x: number; y: number }[]; yAxisID?: 'y' | 'y1' }[];
  x: string;
  y: string;
  /** A right-hand axis, for datasets with yAxisID 'y1'. */
  y1?: string;
}

export interface Section {
  id: string;
  title: string;
  /** The run it shows, and its host reference. */
  source: string;
  charts: ChartSpec[];
  /** A table under the charts: header, then rows. */
  table?: string[][];
}

const num = (value: string | undefined): number | null => (value === undefined || value === '' || Number.isNaN(Number(value)) ? null : Number(value));
const hostNote = (ms: string | undefined): string => (ms ? `host reference work ${ms} ms` : 'host reference not recorded');

/** The newest file of `dir` whose name matches (names carry their stamp, so the last in order is the newest). */
function newest(dir: string, pattern: RegExp): string | null {
  const names = readdirSync(dir).filter((n) => pattern.test(n)).sort();
  return names.length === 0 ? null : names[names.length - 1];
}

/** The runs of many connections, each with a timeline section; `title` as the section heads it. */
const TIMELINE_KINDS = { c10k: 'C10k', c100k: 'C100k', c1m: 'C1M (as many as the machine holds)' } as const;
type TimelineKind = keyof typeof TIMELINE_KINDS;

function timelineSection(dir: string, kind: TimelineKind): Section | null {
  const file = newest(dir, new RegExp(`^${kind}-\\d{8}-\\d{6}-timeline\\.csv$`));
  if (!file) return null;
  const rows = readCsv(join(dir, file));
  const summary = readCsv(join(dir, file.replace('-timeline.csv', '-summary.csv')))[0] ?? {};
  const seconds = rows.map((r) => Number(r.second));
  const col = (name: string) => rows.map((r) => num(r[name]));
  return {
    id: kind,
    title: `${TIMELINE_KINDS[kind]}: connections, round trips, CPU and memory per second`,
    source: `${file} (${summary.clients ?? '?'} clients, ${summary.server ?? 'ours'}; ${hostNote(summary.host_reference_ms)})`,
    charts: [
      {
        id: `${kind}-connections`, title: 'Connections and echo round trips', type: 'line', labels: seconds, x: 'second', y: 'connections', y1: 'round trip, ms',
        datasets: [
          { label: 'connected', data: col('connected') },
          { label: 'completed', data: col('completed') },
          { label: 'rtt p50 (ms)', data: col('rtt_p50_ms'), yAxisID: 'y1' },
          { label: 'rtt p99 (ms)', data: col('rtt_p99_ms'), yAxisID: 'y1' },
          ...(kind !== 'c10k' ? [{ label: 'fanout p99 (ms)', data: col('fanout_p99_ms'), yAxisID: 'y1' as const }] : []),
          { label: "swarm's own loop delay p99 (ms)", data: col('client_loop_delay_p99_ms'), yAxisID: 'y1' as const },
        ],
      },
      {
        id: `${kind}-cpu`, title: 'CPU: server and busiest swarm process', type: 'line', labels: seconds, x: 'second', y: '% of one core', y1: 'server RSS, MiB',
        datasets: [
          { label: 'server CPU %', data: col('server_cpu_pct') },
          { label: 'swarm CPU % (busiest process)', data: col('client_cpu_max_pct') },
          { label: 'server RSS (MiB)', data: col('server_rss_mib'), yAxisID: 'y1' },
        ],
      },
      // Runs from before the swarm sampled its own RSS and the slab have no memory chart.
      ...(rows[0] && 'client_rss_mib' in rows[0]
        ? [{
            id: `${kind}-memory`, title: 'Memory: server, swarm and the kernel\'s slab (every socket\'s state)', type: 'line' as const, labels: seconds, x: 'second', y: 'MiB', y1: 'connections',
            datasets: [
              { label: 'server RSS (MiB)', data: col('server_rss_mib') },
              { label: 'swarm RSS (MiB)', data: col('client_rss_mib') },
              { label: 'kernel slab (MiB)', data: col('kernel_slab_mib') },
              { label: 'connected', data: col('connected'), yAxisID: 'y1' as const },
            ],
          }]
        : []),
    ],
  };
}

function broadcastSection(dir: string): Section | null {
  const file = newest(dir, /^broadcast-\d{8}-\d{6}-steps\.csv$/);
  if (!file) return null;
  const rows = readCsv(join(dir, file));
  const charts: ChartSpec[] = [];
  for (const clients of [...new Set(rows.map((r) => r.clients))]) {
    const mine = rows.filter((r) => r.clients === clients);
    const rates = [...new Set(mine.map((r) => Number(r.rate)))].sort((a, b) => a - b);
    const per = (field: string) =>
      [...new Set(mine.map((r) => r.server))].map((server) => ({
        label: server,
        data: rates.map((rate) => num(mine.find((r) => r.server === server && Number(r.rate) === rate)?.[field])),
      }));
    charts.push(
      { id: `broadcast-${clients}-deliveries`, title: `${clients} clients: deliveries per second against the offered rate`, type: 'line', labels: rates, x: 'messages/s offered', y: 'deliveries/s', datasets: per('deliveries_per_s') },
      { id: `broadcast-${clients}-latency`, title: `${clients} clients: round trip p99 against the offered rate`, type: 'line', labels: rates, x: 'messages/s offered', y: 'rtt p99, ms', datasets: per('rtt_p99_ms') },
    );
  }
  return { id: 'broadcast', title: 'Broadcast: ours, the ws baseline and bare uWS side by side', source: `${file} (${hostNote(rows[0]?.host_reference_ms)})`, charts };
}

function slowSection(dir: string): Section | null {
  const file = newest(dir, /^slow-\d{8}-\d{6}-replies\.csv$/);
  if (!file) return null;
  const rows = readCsv(join(dir, file));
  const summary = readCsv(join(dir, file.replace('-replies.csv', '-summary.csv')));
  const groups = [...new Set(rows.map((r) => `${r.server}, ${r.clients} clients`))];
  return {
    id: 'slow',
    title: 'Slow replies: when each reply came (sorted)',
    source: `${file} (${hostNote(summary[0]?.host_reference_ms)})`,
    charts: [{
      id: 'slow-replies', title: 'Reply times, fastest to slowest', type: 'scatter', x: 'share of replies, %', y: 'ms after the requests were sent',
      datasets: groups.map((group) => {
        const ms = rows.filter((r) => `${r.server}, ${r.clients} clients` === group).map((r) => Number(r.ms)).sort((a, b) => a - b);
        return { label: group, data: ms.map((y, i) => ({ x: ((i + 1) / ms.length) * 100, y })) };
      }),
    }],
  };
}

/**
 * The newest run that named timings or checks, or judged thresholds (`<name>-metrics.csv`, written by
 * the swarm with --out): each timing's p99 per second, and every figure in a table.
 */
function scenarioSection(dir: string): Section | null {
  // Runs of different scenarios, or named with --name, have different prefixes: the newest is the last written.
  const file = readdirSync(dir).filter((name) => name.endsWith('-metrics.csv')).map((name) => ({ name, at: statSync(join(dir, name)).mtimeMs }))
    .sort((a, b) => a.at - b.at).at(-1)?.name;
  if (!file) return null;
  const metrics = readCsv(join(dir, file));
  const summary = readCsv(join(dir, file.replace('-metrics.csv', '-summary.csv')))[0] ?? {};
  const timingsFile = join(dir, file.replace('-metrics.csv', '-timings.csv'));
  const timings = existsSync(timingsFile) ? readCsv(timingsFile) : [];
  const seconds = [...new Set(timings.map((r) => Number(r.second)))].sort((a, b) => a - b);
  const names = [...new Set(timings.map((r) => r.name))];
  const cell = (value: string | undefined): string => value ?? '';
  return {
    id: 'scenario',
    title: `Your scenario (${summary.scenario ?? '?'}): named timings, checks and thresholds`,
    source: `${file} (${summary.clients ?? '?'} clients, ${summary.completed ?? '?'} completed; ${hostNote(summary.host_reference_ms)})`,
    charts: [
      ...(names.length === 0 ? [] : [{
        id: 'scenario-timings', title: 'Each named timing: p99 per second', type: 'line' as const, labels: seconds, x: 'second', y: 'p99, ms',
        datasets: names.map((name) => ({ label: name, data: seconds.map((second) => num(timings.find((r) => r.name === name && Number(r.second) === second)?.p99_ms)) })),
      }]),
      ...stagesChart(join(dir, file.replace('-metrics.csv', '-timeline.csv')), metrics.filter((r) => r.kind === 'stage').map((r) => r.name)),
    ],
    table: [
      ['kind', 'name', 'count', 'p50 ms', 'p99 ms', 'max ms', 'measured', 'passed', 'failed'],
      ...metrics.map((r) => [r.kind, r.name, r.count, r.p50_ms, r.p99_ms, r.max_ms, r.measured, r.passed, r.failed].map(cell)),
    ],
  };
}

/** A run with stages: clients connected and the stages' target each second, the stage in each label. */
function stagesChart(timelineFile: string, stages: string[]): ChartSpec[] {
  if (stages.length === 0 || !existsSync(timelineFile)) return [];
  const rows = readCsv(timelineFile);
  const perSecond = !runsVirtualUsers(stages);
  return [{
    id: 'scenario-stages', title: `The stages (${stages.join(', ')}): ${perSecond ? 'new clients per second asked for' : 'clients at once asked for'} and clients connected`,
    type: 'line', labels: rows.map((r) => (r.stage ? `${r.second} (stage ${r.stage})` : r.second)), x: 'second (stage)', y: 'clients',
    datasets: [
      { label: 'connected', data: rows.map((r) => num(r.connected)) },
      { label: perSecond ? 'target: new clients per second' : 'target: clients at once', data: rows.map((r) => num(r.stage_target)), ...(perSecond ? { yAxisID: 'y1' as const } : {}) },
    ],
    ...(perSecond ? { y1: 'new clients per second' } : {}),
  }];
}

function redisSection(dir: string): Section | null {
  const file = newest(dir, /^redis-\d{8}-\d{6}-steps\.csv$/);
  if (!file) return null;
  const rows = readCsv(join(dir, file)).filter((r) => r.run === '1' || r.run === undefined);
  const rates = [...new Set(rows.map((r) => Number(r.rate)))].sort((a, b) => a - b);
  const setups = [...new Set(rows.map((r) => r.setup))];
  const per = (field: string) => setups.map((setup) => ({ label: setup, data: rates.map((rate) => num(rows.find((r) => r.setup === setup && Number(r.rate) === rate)?.[field])) }));
  return {
    id: 'redis',
    title: 'Redis bridge: fanout and deliveries at rising rates',
    source: `${file} (history ${rows[0]?.history || '0'}; ${hostNote(rows[0]?.host_reference_ms)})`,
    charts: [
      { id: 'redis-fanout', title: 'Fanout p99 (publish to delivery, across instances)', type: 'line', labels: rates, x: 'messages/s offered', y: 'fanout p99, ms', datasets: per('fanout_p99_ms') },
      { id: 'redis-deliveries', title: 'Deliveries per second', type: 'line', labels: rates, x: 'messages/s offered', y: 'deliveries/s', datasets: per('deliveries_per_s') },
    ],
  };
}

function recoverySection(dir: string): Section | null {
  const file = newest(dir, /^recovery-\d{8}-\d{6}-subscribers\.csv$/);
  if (!file) return null;
  const rows = readCsv(join(dir, file)).filter((r) => r.recovery_ms !== '');
  const run = readCsv(join(dir, file.replace('-subscribers.csv', '.csv')))[0] ?? {};
  return {
    id: 'recovery',
    title: 'Recovery: subscribers that dropped and came back with since',
    source: `${file} (${run.exact ?? '?'}/${run.subscribers ?? '?'} exact; ${hostNote(run.host_reference_ms)})`,
    charts: [{
      id: 'recovery-time', title: 'Recovery time against time away', type: 'scatter', x: 'time away, ms', y: 'new connection to ack, ms',
      datasets: [{ label: 'subscribers', data: rows.map((r) => ({ x: Number(r.away_ms), y: Number(r.recovery_ms) })) }],
    }],
  };
}

/** The runs of history.csv over time: the key figure of each, beside its host reference. */
function historySection(dir: string): Section | null {
  let rows: CsvRecord[];
  try {
    rows = readCsv(join(dir, 'history.csv'));
  } catch {
    return null;
  }
  if (rows.length === 0) return null;
  const labels = rows.map((r) => r.run);
  const col = (name: string, keep: (r: CsvRecord) => boolean) => rows.map((r) => (keep(r) ? num(r[name]) : null));
  const echo = (r: CsvRecord) => r.scenario === 'echo';
  const broadcast = (r: CsvRecord) => r.scenario === 'broadcast';
  const last = rows.slice(-30).reverse();
  return {
    id: 'history',
    title: 'Runs over time (results/history.csv)',
    source: `${rows.length} runs; the dashed line is each run's host reference work (right axis)`,
    charts: [
      {
        id: 'history-echo', title: 'Echo runs: round trip p99 and connect rate', type: 'line', labels, x: 'run', y: 'rtt p99, ms  /  connects per s / 1000', y1: 'host reference work, ms',
        datasets: [
          { label: 'rtt p99 (ms)', data: col('rtt_p99_ms', echo) },
          { label: 'connect rate (1000/s)', data: rows.map((r) => (echo(r) && num(r.connect_rate_per_s) !== null ? Number(r.connect_rate_per_s) / 1000 : null)) },
          { label: 'host reference (ms)', data: col('host_reference_ms', () => true), yAxisID: 'y1' },
        ],
      },
      {
        id: 'history-broadcast', title: 'Broadcast runs: fanout p99', type: 'line', labels, x: 'run', y: 'fanout p99, ms', y1: 'host reference work, ms',
        datasets: [
          { label: 'fanout p99 (ms)', data: col('fanout_p99_ms', broadcast) },
          { label: 'host reference (ms)', data: col('host_reference_ms', () => true), yAxisID: 'y1' },
        ],
      },
    ],
    table: [
      ['run', 'server', 'scenario', 'clients', 'rtt p99 ms', 'fanout p99 ms', "whose (swarm's loop delay p99 ms)", 'connects/s', 'saturated', 'host reference ms'],
      ...last.map((r) => [r.run, r.server, r.scenario, r.clients, r.rtt_p99_ms, r.fanout_p99_ms, whose(r), r.connect_rate_per_s, r.saturated, r.host_reference_ms ?? ''].map((v) => v ?? '')),
    ],
  };
}

/** Every section there is data for, in the report's order. */
export function reportSections(dir: string): Section[] {
  return [...(Object.keys(TIMELINE_KINDS) as TimelineKind[]).map((kind) => timelineSection(dir, kind)), broadcastSection(dir), slowSection(dir), scenarioSection(dir), redisSection(dir), recoverySection(dir), historySection(dir)].filter(
    (s): s is Section => s !== null,
  );
}

const escape = (text: string): string => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
/** JSON that may stand inside a <script> element. */
const scriptJson = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');

/** Chart.js's browser build, to inline into a page that must open offline. */
export function chartJsSource(): string {
  const require = createRequire(import.meta.url);
  // The UMD build is not among the package's exports: found beside its main file.
  return readFileSync(join(dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'utf8').replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n');
}

/** What heads a report: the results report's, unless a run's own report says otherwise. */
export interface ReportHeading {
  title: string;
  /** The paragraph under the title. */
  intro: string;
}

const RESULTS_HEADING: ReportHeading = {
  title: 'uws-pubsub-bench results',
  intro: 'Built {at} from the CSVs beside this file. Compare figures side by side within one run; the host reference work beside each (lower is a faster core) tells a slow host from slow code.',
};

/** The report's HTML: the sections, Chart.js inlined, the charts drawn from inlined data. `{at}` in the intro is when it was built. */
export function reportHtml(sections: Section[], generatedAt = new Date(), heading: ReportHeading = RESULTS_HEADING): string {
  const chartJs = chartJsSource();
  const body = sections
    .map((s) => {
      const charts = s.charts.map((c) => `<figure><figcaption>${escape(c.title)}</figcaption><div class="chart"><canvas id="${escape(c.id)}"></canvas></div></figure>`).join('\n');
      const table = s.table
        ? `<table><thead><tr>${s.table[0].map((h) => `<th>${escape(h)}</th>`).join('')}</tr></thead><tbody>${s.table.slice(1).map((row) => `<tr>${row.map((v) => `<td>${escape(v)}</td>`).join('')}</tr>`).join('')}</tbody></table>`
        : '';
      return `<section id="${escape(s.id)}"><h2>${escape(s.title)}</h2><p class="source">${escape(s.source)}</p>${charts}${table}</section>`;
    })
    .join('\n');
  const empty = sections.length === 0 ? '<p>No results yet: run a benchmark (make bench-c10k QUICK=1) and then make report.</p>' : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(heading.title)}</title>
<link rel="icon" href="data:,">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
.source{color:#666;margin:.2em 0 1em}figure{margin:1em 0}figcaption{font-weight:600}
.chart{position:relative;height:320px}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
td:first-child,th:first-child{text-align:left}
</style></head><body>
<h1>${escape(heading.title)}</h1>
<p>${escape(heading.intro.replace('{at}', generatedAt.toISOString()))}</p>
${empty}${body}
<script>${chartJs}</script>
<script>
const CHARTS = ${scriptJson(sections.flatMap((s) => s.charts))};
for (const c of CHARTS) {
  const scales = { x: { type: c.type === 'scatter' ? 'linear' : 'category', title: { display: true, text: c.x } }, y: { title: { display: true, text: c.y } } };
  if (c.y1) scales.y1 = { position: 'right', grid: { drawOnChartArea: false }, title: { display: true, text: c.y1 } };
  const datasets = c.datasets.map((d) => ({ ...d, spanGaps: true, pointRadius: c.type === 'scatter' ? 2 : 1, borderDash: d.yAxisID === 'y1' ? [6, 4] : undefined }));
  new Chart(document.getElementById(c.id), { type: c.type, data: { labels: c.labels, datasets }, options: { animation: false, maintainAspectRatio: false, scales } });
}
</script>
</body></html>
`;
}

/** A history row's verdict on its printed p99s (harness-share.ts): e.g. "rtt server, fanout shared (12.3)"; empty for older rows. */
function whose(r: CsvRecord): string {
  const owners = TIMED_LATENCIES.filter((name) => r[`${name}_owner`]).map((name) => `${name} ${r[`${name}_owner`]}`);
  return owners.length === 0 ? '' : `${owners.join(', ')} (${r.client_loop_delay_p99_ms ?? '?'})`;
}
