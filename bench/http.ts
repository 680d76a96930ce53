/**
 * `make bench-http`: autocannon against our server's `POST /publish` (with subscribers listening, so each
 * request fans out) and `GET /stats`. Writes results/http-<stamp>.csv, a row per endpoint, with the
 * server's CPU over the run (from /proc) and autocannon's own, to say which side ran out first.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import autocannon from 'autocannon';
import WebSocket from 'ws';
import { saturation } from '../clients/swarm/saturation.js';
import { stamp, writeCsv, type Row } from '../clients/swarm/output/csv.js';
import { sampleProcess } from '../clients/host/proc.js';
import { catchInterrupts, interruptible } from '../clients/host/interrupt.js';
import { benchCli, csvLine, finishBench, interrupted, numeric, RESULTS_DIR } from './lib/run.js';
import { startServerProcess } from './lib/servers.js';
import { serverArgs } from '../server/options.js';

const args = await benchCli('bench-http', '$0 [flags]\n\nHTTP throughput of POST /publish and GET /stats, measured with autocannon.')
  .option('connections', { coerce: numeric, requiresArg: true, default: 50, describe: 'concurrent HTTP connections' })
  .option('duration', { coerce: numeric, requiresArg: true, default: 10, describe: 'seconds per endpoint' })
  .option('subscribers', { coerce: numeric, requiresArg: true, default: 10, describe: '/pubsub clients subscribed to the published channel' })
  .option('out', { type: 'string', default: RESULTS_DIR, describe: 'directory for the CSV' })
  .check((a) => {
    for (const key of ['connections', 'duration'] as const) {
      if (!Number.isInteger(a[key]) || (a[key] as number) < 1) throw new Error(`--${key} must be an integer of 1 or more, got ${String(a[key])}`);
    }
    if (!Number.isInteger(a.subscribers) || (a.subscribers as number) < 0) throw new Error(`--subscribers must be an integer of 0 or more, got ${String(a.subscribers)}`);
    return true;
  })
  .parseAsync();

const key = 'bench-http-key';
const server = await startServerProcess('ours', serverArgs({ publishKey: key }));
const rows: Row[] = [];
const subscribers: WebSocket[] = [];
let received = 0;
try {
  for (let i = 0; i < (args.subscribers as number); i++) {
    const ws = new WebSocket(`${server.url}/pubsub`, { perMessageDeflate: false });
    ws.on('message', () => received++);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    // Wait for the ack, so that neither welcome nor subscribed counts as a delivery below.
    const acked = new Promise<void>((resolve) => {
      const onAck = (data: WebSocket.RawData): void => {
        if (data.toString().startsWith('{"event":"subscribed"')) resolve(void ws.off('message', onAck));
      };
      ws.on('message', onAck);
    });
    ws.send(JSON.stringify({ action: 'subscribe', payload: { channel: 'news' }, id: 1 }));
    await acked;
    subscribers.push(ws);
  }
  const base = `http://127.0.0.1:${server.port}`;
  const endpoints = [
    { name: 'POST /publish', url: `${base}/publish`, method: 'POST' as const, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{"channel":"news","message":{"price":42}}' },
    { name: 'GET /stats', url: `${base}/stats`, method: 'GET' as const, headers: {}, body: undefined },
  ];
  catchInterrupts();
  for (const endpoint of endpoints) {
    if (interrupted()) break;
    console.log(`\nbench-http: ${endpoint.name}, ${args.connections} connections, ${args.duration} s`);
    const serverBefore = sampleProcess(server.pid);
    const cpuBefore = process.cpuUsage();
    const startedAt = Date.now();
    const receivedBefore = received;
    const job = autocannon({
      url: endpoint.url, method: endpoint.method, headers: endpoint.headers, body: endpoint.body,
      connections: args.connections as number, duration: args.duration as number,
    });
    // Ctrl-C stops autocannon early; its figures so far are kept, marked interrupted.
    const done = interruptible({ interrupt: () => (job as unknown as autocannon.Instance).stop() });
    // autocannon's instance is a thenable without finally(): adopted by a Promise first.
    const result = await Promise.resolve(job).finally(done);
    const seconds = (Date.now() - startedAt) / 1000;
    // Deliveries of the last accepted publishes may still be on their way to the subscribers.
    if (endpoint.method === 'POST') await new Promise((resolve) => setTimeout(resolve, 500));
    const serverAfter = sampleProcess(server.pid);
    const cpu = process.cpuUsage(cpuBefore);
    const serverCpu = serverBefore && serverAfter ? ((serverAfter.cpuMicros - serverBefore.cpuMicros) / (seconds * 1e6)) * 100 : NaN;
    const clientCpu = ((cpu.user + cpu.system) / (seconds * 1e6)) * 100;
    const saturated = saturation(serverCpu, clientCpu);
    const row: Row = {
      endpoint: endpoint.name, connections: args.connections as number, duration_s: Math.round(seconds * 10) / 10,
      requests: result.requests.total, requests_per_s: Math.round(result.requests.average),
      latency_p50_ms: result.latency.p50, latency_p99_ms: result.latency.p99, latency_max_ms: result.latency.max,
      non_2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts,
      deliveries: endpoint.method === 'POST' ? received - receivedBefore : null,
      // autocannon does not count the request each connection still has in flight when it stops, though
      // the server may have accepted it: the true number lies between these two.
      expected_deliveries_min: endpoint.method === 'POST' ? (result.requests.total - result.non2xx) * subscribers.length : null,
      expected_deliveries_max: endpoint.method === 'POST' ? (result.requests.total - result.non2xx + (args.connections as number)) * subscribers.length : null,
      server_cpu_pct: Math.round(serverCpu), client_cpu_pct: Math.round(clientCpu), saturated,
      interrupted: interrupted() ?? '',
    };
    rows.push(row);
    console.log(`${endpoint.name}: ${row.requests_per_s} req/s, latency p50 ${row.latency_p50_ms} ms p99 ${row.latency_p99_ms} ms, non-2xx ${row.non_2xx}, errors ${row.errors}; cpu server ${row.server_cpu_pct}% autocannon ${row.client_cpu_pct}% -> saturated: ${saturated}`);
    if (row.deliveries !== null) {
      const inRange = (row.deliveries as number) >= (row.expected_deliveries_min as number) && (row.deliveries as number) <= (row.expected_deliveries_max as number);
      console.log(`  ${row.deliveries} messages reached the ${subscribers.length} subscribers; expected ${row.expected_deliveries_min} to ${row.expected_deliveries_max}${inRange ? '' : ' -- OUT OF RANGE: messages were lost'}`);
    }
  }
} finally {
  for (const ws of subscribers) ws.terminate();
  await server.stop();
}
mkdirSync(args.out, { recursive: true });
const file = join(args.out, `http-${stamp()}.csv`);
writeCsv(file, rows);
console.log(csvLine([file]));
finishBench(args, false);
