/**
 * The HTTP endpoints: `GET /health`, `GET /stats`, `GET /metrics`, `POST /publish`, and answers for
 * everything else (405 on a known path with another method, 426 for a plain GET on a WebSocket path,
 * 404 elsewhere).
 */
import { timingSafeEqual } from 'node:crypto';
import type { HttpResponse } from 'uWebSockets.js';
import { parseChannel } from '../protocol/index.js';
import { statsJson, statsPrometheus, type StatsContext } from '../stats.js';
import type { ServerContext } from './context.js';

/** Publishes a message the way a WebSocket publish would (counted, through the broker). */
export type Publish = (channel: string, messageJson: string) => Promise<void>;

const ROUTES: Record<string, string> = { '/health': 'GET', '/stats': 'GET', '/metrics': 'GET', '/publish': 'POST' };
const WEBSOCKET_PATHS = new Set(['/pubsub', '/echo']);

/** Registers the HTTP routes on the app. */
export function registerHttp(ctx: ServerContext, statsContext: () => StatsContext, publish: Publish): void {
  const { app, stats } = ctx;
  app.get('/health', (res) => {
    stats.httpRequests++;
    const state = ctx.broker.state();
    if (state === 'ready') json(res, 200, { status: 'ok' });
    else json(res, 503, { status: 'degraded', broker: ctx.broker.kind, state });
  });
  app.get('/stats', (res) => {
    stats.httpRequests++;
    json(res, 200, statsJson(stats, statsContext()));
  });
  app.get('/metrics', (res) => {
    stats.httpRequests++;
    res.writeHeader('Content-Type', 'text/plain; version=0.0.4').end(statsPrometheus(stats, statsContext()));
  });
  app.post('/publish', (res, req) => {
    stats.httpRequests++;
    // Everything needed from req is read now: it is invalid after this function returns.
    const authorization = req.getHeader('authorization');
    const contentLength = req.getHeader('content-length');
    void handlePublish(ctx, res, authorization, contentLength, publish);
  });
  app.any('/*', (res, req) => {
    stats.httpRequests++;
    const url = req.getUrl();
    const allowed = ROUTES[url];
    if (allowed) {
      json(res, 405, { error: 'method_not_allowed', message: `${url} takes ${allowed}` }, { Allow: allowed });
    } else if (WEBSOCKET_PATHS.has(url)) {
      json(res, 426, { error: 'upgrade_required', message: `${url} is a WebSocket endpoint` });
    } else {
      json(res, 404, { error: 'not_found', message: `no such path: ${url}` });
    }
  });
}

async function handlePublish(
  ctx: ServerContext,
  res: HttpResponse,
  authorization: string,
  contentLength: string,
  publish: Publish,
): Promise<void> {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  const reply = (status: number, body: unknown): void => {
    if (!aborted) res.cork(() => json(res, status, body));
  };
  const key = ctx.options.publishKey;
  if (key === null) {
    return json(res, 403, { error: 'disabled', message: 'HTTP publishing is off: start the server with --publish-key' });
  }
  if (!bearerMatches(authorization, key)) {
    return json(res, 401, { error: 'unauthorized', message: 'Authorization: Bearer <publish key> is missing or wrong' });
  }
  const limit = ctx.options.maxPayload;
  if (contentLength !== '' && Number(contentLength) > limit) return tooLarge(res, limit);
  const body = await readBody(res, limit);
  if (aborted) return;
  if (body === null) {
    res.cork(() => tooLarge(res, limit));
    return;
  }
  const parsed = parsePublishBody(body);
  if ('error' in parsed) return reply(400, parsed);
  try {
    await publish(parsed.channel, parsed.messageJson);
    reply(202, { ok: true });
  } catch (err) {
    reply(503, { error: 'publish_failed', message: (err as Error).message });
  }
}

/** Validates a `/publish` body: `{"channel": <name>, "message": <any JSON>}`. */
export function parsePublishBody(body: Buffer): { channel: string; messageJson: string } | { error: string; message: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { error: 'bad_json', message: 'body is not valid JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { error: 'bad_json', message: 'body is not a JSON object' };
  }
  const { channel, message } = parsed as Record<string, unknown>;
  if (typeof channel !== 'string') return { error: 'bad_request', message: '"channel" must be a string' };
  if (!parseChannel(channel)) return { error: 'bad_channel', message: `channel ${JSON.stringify(channel.slice(0, 50))} is outside the grammar` };
  if (message === undefined) return { error: 'bad_request', message: '"message" is missing' };
  return { channel, messageJson: JSON.stringify(message) };
}

function bearerMatches(authorization: string, key: string): boolean {
  const given = Buffer.from(authorization);
  const expected = Buffer.from(`Bearer ${key}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Collects the body; resolves null as soon as it passes `limit` bytes. */
function readBody(res: HttpResponse, limit: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    res.onData((chunk, isLast) => {
      if (over) return;
      size += chunk.byteLength;
      if (size > limit) {
        over = true;
        return resolve(null);
      }
      // uWS reuses the chunk's memory after this callback: copy it.
      chunks.push(Buffer.from(chunk.slice(0)));
      if (isLast) resolve(Buffer.concat(chunks));
    });
  });
}

/** 413, and the connection is closed: the rest of the body is not worth reading. */
function tooLarge(res: HttpResponse, limit: number): void {
  res.writeStatus('413 Payload Too Large').writeHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ error: 'too_large', message: `body over ${limit} bytes (--max-payload)` }), true);
}

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK',
  202: '202 Accepted',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  426: '426 Upgrade Required',
  503: '503 Service Unavailable',
};

/** Writes a JSON response. */
function json(res: HttpResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeStatus(STATUS_TEXT[status] ?? String(status));
  for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
  res.writeHeader('Content-Type', 'application/json').end(JSON.stringify(body));
}
