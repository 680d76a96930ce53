/**
 * Server counters, and their two renderings: JSON for `GET /stats`, Prometheus text for `GET /metrics`.
 * The endpoints write plain fields; nothing here touches a socket.
 */
import { getHeapSpaceStatistics } from 'node:v8';
import { REFUSALS, type Refusal } from './refusals.js';
import type { EngineInfo } from './engine.js';
import { HOOK_NAMES, type HookName } from './hooks.js';
import type { LoopDelay } from './loop-delay.js';
import { ERROR_CODES, type ErrorCode } from './protocol/index.js';

/** Every counter the server keeps. Monotonic counters only grow; gauges go up and down. */
export class Stats {
  readonly startedAt = Date.now();
  /** Gauge: open `/pubsub` connections. */
  pubsubConnections = 0;
  /** Gauge: open `/echo` connections. */
  echoConnections = 0;
  /** Counter: WebSocket connections accepted since start, both endpoints. */
  connectionsTotal = 0;
  /** Gauge: subscriptions held, summed over connections. */
  subscriptions = 0;
  /** Gauge: channels with at least one local subscriber. */
  channels = 0;
  /** Counter: frames received on `/pubsub` and `/echo`. */
  messagesIn = 0;
  /** Counter: frames sent, a delivery to each subscriber counted once. */
  messagesOut = 0;
  /** Counter: messages published (by clients, HTTP or the broker). */
  published = 0;
  /** Counter: error frames sent, by code. */
  readonly errors: Record<ErrorCode, number> = Object.fromEntries(ERROR_CODES.map((c) => [c, 0])) as Record<
    ErrorCode,
    number
  >;
  /** Counter: direct sends uWS refused because the socket was past its backpressure limit. */
  dropped = 0;
  /** Counter: connections closed as slow consumers (1008). */
  slowConsumers = 0;
  /** Counter: connections closed because their frame was over the payload limit (1009). */
  tooLarge = 0;
  /** Counter: `slow` requests answered / failed. */
  slowDone = 0;
  slowFailed = 0;
  /** Gauge: `slow` requests waiting on their IO. */
  slowPending = 0;
  /** Counter: HTTP requests served, all paths. */
  httpRequests = 0;
  /** Counter: WebSocket upgrades refused, by reason (see endpoints/admission.ts). */
  readonly refused: Record<Refusal, number> = Object.fromEntries(REFUSALS.map((r) => [r, 0])) as Record<Refusal, number>;
  /** Counter: `POST /publish` bodies refused with 413. */
  httpTooLarge = 0;
  /**
   * Counter: exceptions that escaped a handler (a bug, never a bad frame: those are error frames). The
   * connection or request concerned was ended with 1011 or 500; the process went on.
   */
  handlerErrors = 0;
  /** Hook calls that threw or ran past --hook-timeout, by hook (server/hooks.ts). */
  readonly hookErrors: Record<HookName, number> = Object.fromEntries(HOOK_NAMES.map((name) => [name, 0])) as Record<HookName, number>;
  /** Of those, the ones that ran past the limit. */
  hookTimeouts = 0;
  /**
   * Counter: WebSocket connections the client ended, by how (both endpoints; closes the server started
   * are counted where it started them). `invalid_utf8`: uWS cut the connection for a text frame that
   * is not UTF-8. `abnormal`: the connection ended without a close handshake, a protocol error
   * (reserved opcode or RSV bit, control frame over 125 bytes, bad fragment, bad close code) or a
   * client that dropped it: uWS 20.30 reports both as 1006 and tells them apart in no way. `normal`:
   * the client sent a close frame.
   */
  readonly closes = { normal: 0, abnormal: 0, invalid_utf8: 0 };
  /** Counter: HTTP error answers by their `error` code (404 not_found, 400 bad_json, 401 unauthorized, ...). */
  readonly httpErrors: Record<string, number> = {};
  /** Counter: slow-consumer sweeps over every `/pubsub` socket, and the milliseconds they took in all. */
  sweeps = 0;
  sweepMs = 0;
}

/**
 * Counts a WebSocket close the client started (see {@link Stats.closes}); `tooLarge` counts uWS's own
 * cut-off of a frame past its read limit, which arrives the same way.
 */
export function countClientClose(stats: Stats, code: number, reason: ArrayBuffer): void {
  if (code !== 1006) {
    stats.closes.normal++;
    return;
  }
  const text = Buffer.from(reason).toString();
  if (text === 'Received too big message') stats.tooLarge++;
  else if (text === 'Received invalid UTF-8') stats.closes.invalid_utf8++;
  else stats.closes.abnormal++;
}

/** What `/stats` and `/metrics` need besides the counters. */
export interface StatsContext {
  engine: EngineInfo;
  broker: { kind: string; state: string; counters: Record<string, number> };
  slowIo: string;
  /** WebSocket connections allowed at once (`--max-connections`, or derived from the open-file limit). */
  maxConnections: number;
  /** Event-loop delay over the last whole window. */
  loopDelay: LoopDelay;
  /** Each monitor's state and counters, by name. */
  monitors: Record<string, Record<string, number | string>>;
  /** The presence store's kind and counters; null when presence is off. */
  presence: Record<string, number | string> | null;
  /** What the history in this process keeps (channels, bytes) and dropped (expired, evicted); null without one. */
  history: Record<string, number> | null;
}

/** The JSON body of `GET /stats`. */
export function statsJson(stats: Stats, context: StatsContext): Record<string, unknown> {
  const memory = process.memoryUsage();
  return {
    connections: stats.pubsubConnections + stats.echoConnections,
    connections_by_endpoint: { pubsub: stats.pubsubConnections, echo: stats.echoConnections },
    connections_total: stats.connectionsTotal,
    subscriptions: stats.subscriptions,
    channels: stats.channels,
    messages_in: stats.messagesIn,
    messages_out: stats.messagesOut,
    published: stats.published,
    errors: { ...stats.errors },
    dropped: stats.dropped,
    slow_consumers: stats.slowConsumers,
    too_large: stats.tooLarge,
    slow: { pending: stats.slowPending, done: stats.slowDone, failed: stats.slowFailed, backend: context.slowIo },
    http_requests: stats.httpRequests,
    http_too_large: stats.httpTooLarge,
    http_errors: { ...stats.httpErrors },
    closes: { ...stats.closes },
    refused: { ...stats.refused },
    handler_errors: stats.handlerErrors,
    hook_errors: { ...stats.hookErrors },
    hook_timeouts: stats.hookTimeouts,
    sweeps: stats.sweeps,
    sweep_ms: Math.round(stats.sweepMs * 1000) / 1000,
    max_connections: context.maxConnections,
    event_loop_delay: context.loopDelay,
    engine: {
      name: context.engine.name,
      version: context.engine.version,
      package: context.engine.package,
      binary: context.engine.binary,
      description: context.engine.description,
      skipped: context.engine.skipped,
      request_head_limit: context.engine.requestHeadLimit,
    },
    redis: context.broker.kind === 'local' ? 'not configured' : context.broker.state,
    broker: { kind: context.broker.kind, state: context.broker.state, ...context.broker.counters },
    monitors: context.monitors,
    presence: context.presence,
    history: context.history,
    uptime_s: Math.round((Date.now() - stats.startedAt) / 1000),
    memory: {
      rss: memory.rss,
      heap_used: memory.heapUsed,
      // What V8 holds for its heap (used or not), and of it the young generation, which grows by itself
      // under a steady allocation rate: together they tell heap growth from native growth in RSS.
      heap_total: memory.heapTotal,
      new_space: newSpaceSize(),
      external: memory.external,
    },
    pid: process.pid,
  };
}

/** The Prometheus text exposition (format 0.0.4) of `GET /metrics`. */
export function statsPrometheus(stats: Stats, context: StatsContext): string {
  const lines: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: [string, number][]): void => {
    lines.push(`# HELP pubsub_${name} ${help}`, `# TYPE pubsub_${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`pubsub_${name}${labels} ${value}`);
  };
  const memory = process.memoryUsage();
  metric('connections', 'gauge', 'Open WebSocket connections.', [
    ['{endpoint="pubsub"}', stats.pubsubConnections],
    ['{endpoint="echo"}', stats.echoConnections],
  ]);
  metric('connections_total', 'counter', 'WebSocket connections accepted.', [['', stats.connectionsTotal]]);
  metric('subscriptions', 'gauge', 'Subscriptions held over all connections.', [['', stats.subscriptions]]);
  metric('channels', 'gauge', 'Channels with at least one local subscriber.', [['', stats.channels]]);
  metric('messages_in_total', 'counter', 'Frames received.', [['', stats.messagesIn]]);
  metric('messages_out_total', 'counter', 'Frames sent; each delivery counted.', [['', stats.messagesOut]]);
  metric('published_total', 'counter', 'Messages published.', [['', stats.published]]);
  metric(
    'errors_total',
    'counter',
    'Error frames sent, by code.',
    ERROR_CODES.map((code) => [`{code="${code}"}`, stats.errors[code]]),
  );
  metric('dropped_total', 'counter', 'Sends refused for backpressure.', [['', stats.dropped]]);
  metric('slow_consumers_total', 'counter', 'Connections closed as slow consumers.', [['', stats.slowConsumers]]);
  metric('too_large_total', 'counter', 'Connections closed for a frame over the payload limit.', [['', stats.tooLarge]]);
  metric('slow_pending', 'gauge', 'Slow requests waiting on IO.', [['', stats.slowPending]]);
  metric('slow_done_total', 'counter', 'Slow requests answered.', [['', stats.slowDone]]);
  metric('slow_failed_total', 'counter', 'Slow requests whose IO failed.', [['', stats.slowFailed]]);
  metric('http_requests_total', 'counter', 'HTTP requests served.', [['', stats.httpRequests]]);
  metric('http_too_large_total', 'counter', 'POST /publish bodies refused with 413.', [['', stats.httpTooLarge]]);
  metric(
    'refused_total',
    'counter',
    'WebSocket upgrades refused, by reason.',
    REFUSALS.map((why) => [`{reason="${why}"}`, stats.refused[why]]),
  );
  metric('http_errors_total', 'counter', 'HTTP error answers, by code.', Object.entries(stats.httpErrors).map(([code, n]) => [`{code="${code}"}`, n]));
  metric('client_closes_total', 'counter', 'WebSocket connections the client ended, by how.', Object.entries(stats.closes).map(([how, n]) => [`{how="${how}"}`, n]));
  metric('hook_errors_total', 'counter', 'Hook calls that threw or ran past --hook-timeout, by hook.', HOOK_NAMES.map((name) => [`{hook="${name}"}`, stats.hookErrors[name]]));
  metric('handler_errors_total', 'counter', 'Exceptions that escaped a handler; the connection or request was ended, the process went on.', [['', stats.handlerErrors]]);
  metric('sweeps_total', 'counter', 'Slow-consumer sweeps over every socket.', [['', stats.sweeps]]);
  metric('sweep_seconds_total', 'counter', 'Time spent in slow-consumer sweeps.', [['', stats.sweepMs / 1000]]);
  metric('event_loop_delay_p99_seconds', 'gauge', `Event-loop delay p99 over the last ${context.loopDelay.window_s} s.`, [['', context.loopDelay.p99_ms / 1000]]);
  metric('max_connections', 'gauge', 'WebSocket connections allowed at once.', [['', context.maxConnections]]);
  metric('engine_info', 'gauge', 'Engine serving the sockets.', [
    [`{engine="${context.engine.name}",version="${context.engine.version}"}`, 1],
  ]);
  metric('broker_up', 'gauge', '1 when the broker can deliver across instances.', [
    [`{broker="${context.broker.kind}"}`, context.broker.state === 'ready' ? 1 : 0],
  ]);
  for (const [name, value] of Object.entries(context.broker.counters)) {
    metric(`broker_${name}`, name === 'channels_subscribed' ? 'gauge' : 'counter', `Broker (${context.broker.kind}): ${name.replace(/_/g, ' ')}.`, [['', value]]);
  }
  metric('uptime_seconds', 'gauge', 'Seconds since start.', [['', Math.round((Date.now() - stats.startedAt) / 1000)]]);
  metric('resident_memory_bytes', 'gauge', 'Resident set size.', [['', memory.rss]]);
  return lines.join('\n') + '\n';
}

/** Bytes V8 holds for its young generation (new_space), or 0 when it does not say. */
function newSpaceSize(): number {
  return getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0;
}
