/**
 * The live dashboard (`swarm --dashboard [port]`): a page, served during the run, with the run's charts
 * (run-section.ts) updated each second over server-sent events, a line of status (stage and target,
 * connected, checks, the saturated side), and when the run ends the static report of that run in its
 * place (sent whole in the last event, so it arrives before the command exits). A subscriber of the
 * engine like the other outputs.
 *
 * It listens on 127.0.0.1 only: it is for the person running the swarm, and what it serves (the run's
 * figures, its URL and options, secrets left out by the summary's own rules) is not for the network.
 * Only GET of `/` and `/events`; at most MAX_VIEWERS pages at once.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RunSummary, Swarm, TickEvent } from '../swarm.js';
import { saturation, type Saturation } from '../saturation.js';
import { chartJsSource, reportHtml } from './report.js';
import { liveRow, runCharts, runSection, type LiveRow } from './run-section.js';

/** Pages that may watch at once: each holds a connection open for the run. */
const MAX_VIEWERS = 20;

/** The status line over the charts. */
interface Status {
  second: number;
  connected: number;
  clients: number;
  stage: TickEvent['stage'];
  checksRate: number | null;
  errors: number;
  saturated: Saturation;
}

export interface Dashboard {
  url: string;
  /** The static report of the run, once it has ended; null before. */
  report(): string | null;
  close(): Promise<void>;
}

/** Serves the dashboard of `swarm` on `port` (0: any free one) from now until {@link Dashboard.close}. */
export async function attachDashboard(swarm: Swarm, port: number, label: string): Promise<Dashboard> {
  const ticks: TickEvent[] = [];
  const rows: LiveRow[] = [];
  const viewers = new Set<ServerResponse>();
  let last: Status | null = null;
  let report: string | null = null;

  const send = (to: Iterable<ServerResponse>, event: string, data: unknown): void => {
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const viewer of to) viewer.write(text);
  };

  swarm.on('tick', (tick: TickEvent) => {
    const row = liveRow(tick, ticks.at(-1) ?? null);
    ticks.push(tick);
    rows.push(row);
    last = statusOf(tick, row, swarm.options.clients);
    send(viewers, 'tick', { row, status: last });
  });
  swarm.on('done', (summary: RunSummary) => {
    report = reportHtml([runSection(ticks, summary, label)], new Date(), {
      title: `swarm run: ${label}, ${summary.options.scenario}`,
      intro: 'The report of this run, built {at} when it ended, from every second the dashboard showed.',
    });
    send(viewers, 'done', { report });
  });

  const page = pageHtml();
  const server = createServer((request, response) => {
    if (request.method !== 'GET') return void response.writeHead(405, { allow: 'GET' }).end();
    const path = new URL(request.url ?? '/', 'http://dashboard').pathname;
    if (path === '/') return void response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(page);
    if (path !== '/events') return void response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the dashboard is / and /events\n');
    if (viewers.size >= MAX_VIEWERS) return void response.writeHead(503, { 'content-type': 'text/plain' }).end(`at most ${MAX_VIEWERS} pages watch at once\n`);
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    // A page that opens late gets the run so far first; one that opens after the end, the report.
    send([response], 'hello', { charts: runCharts([]), rows, status: last, title: `${label}: ${swarm.options.scenario}` });
    if (report) send([response], 'done', { report });
    viewers.add(response);
    request.on('close', () => viewers.delete(response));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/`,
    report: () => report,
    close: () =>
      new Promise((resolve) => {
        for (const viewer of viewers) viewer.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The status line of a tick, from its row where the row has the figure. */
function statusOf(tick: TickEvent, row: LiveRow, clients: number): Status {
  return {
    second: tick.second,
    connected: tick.counters.connected,
    clients,
    stage: tick.stage,
    checksRate: tick.checks.rate,
    errors: row.errors as number,
    saturated: saturation(tick.server ? tick.server.busiestPct : null, tick.clientCpuMaxPct, row.machine_cpu as number),
  };
}

/** The page: Chart.js inlined (the report's), charts made from the first event, a point added per tick. */
function pageHtml(): string {
  const chartJs = chartJsSource();
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>swarm: live</title>
<link rel="icon" href="data:,">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1100px;color:#222}
h1{font-size:1.4em}#status{font-weight:600;margin:.5em 0 1em}figure{margin:1em 0}figcaption{font-weight:600}
.chart{position:relative;height:260px}
</style></head><body>
<h1 id="title">swarm: live</h1>
<p id="status">waiting for the first second of the run</p>
<div id="charts"></div>
<script>${chartJs}</script>
<script>
const TIMING = ${JSON.stringify(`timing:`)};
const charts = [];
function addChart(spec) {
  const figure = document.createElement('figure');
  figure.innerHTML = '<figcaption></figcaption><div class="chart"><canvas></canvas></div>';
  figure.querySelector('figcaption').textContent = spec.title;
  document.getElementById('charts').appendChild(figure);
  const datasets = spec.datasets.map((d) => ({ ...d, spanGaps: true, pointRadius: 1 }));
  const chart = new Chart(figure.querySelector('canvas'), { type: 'line', data: { labels: [], datasets },
    options: { animation: false, maintainAspectRatio: false, scales: { x: { title: { display: true, text: spec.x } }, y: { title: { display: true, text: spec.y } } } } });
  charts.push({ spec, chart, keys: spec.keys.slice() });
}
function addRow(row) {
  for (const c of charts) {
    // A named timing seen for the first time gets its p50 and p99 on the latency chart.
    if (c.spec.id === 'live-latency') {
      for (const key of Object.keys(row)) {
        if (key.startsWith(TIMING) && !c.keys.includes(key)) {
          c.keys.push(key);
          c.chart.data.datasets.push({ label: key.slice(TIMING.length).replace(/:(p50|p99)$/, ' $1'), data: c.chart.data.labels.map(() => null), spanGaps: true, pointRadius: 1 });
        }
      }
    }
    c.chart.data.labels.push(row.second);
    c.keys.forEach((key, i) => c.chart.data.datasets[i].data.push(typeof row[key] === 'number' ? row[key] : null));
  }
}
function showStatus(s) {
  if (!s) return;
  const parts = ['t=' + s.second + 's', 'connected ' + s.connected + '/' + s.clients];
  if (s.stage) parts.push('stage ' + s.stage.number + ', target ' + s.stage.target);
  if (s.checksRate !== null) parts.push('checks ' + (s.checksRate * 100).toFixed(2) + '%');
  parts.push('errors ' + s.errors, 'saturated: ' + s.saturated);
  const el = document.getElementById('status');
  el.textContent = parts.join('   ');
  el.dataset.second = s.second;
  el.dataset.connected = s.connected;
}
const events = new EventSource('/events');
events.addEventListener('hello', (e) => {
  const hello = JSON.parse(e.data);
  document.getElementById('title').textContent = 'swarm, live: ' + hello.title;
  if (charts.length === 0) hello.charts.forEach(addChart);
  hello.rows.forEach(addRow);
  for (const c of charts) c.chart.update();
  showStatus(hello.status);
});
events.addEventListener('tick', (e) => {
  const { row, status } = JSON.parse(e.data);
  addRow(row);
  for (const c of charts) c.chart.update();
  showStatus(status);
});
events.addEventListener('done', (e) => {
  events.close();
  document.open();
  document.write(JSON.parse(e.data).report);
  document.close();
});
</script>
</body></html>
`;
}
