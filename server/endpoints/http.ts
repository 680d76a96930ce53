/**
 * The HTTP endpoints: `GET /health`, `GET /stats`, `GET /metrics`, `POST /publish`, `GET /client.js`
 * (the browser client, server/public/client.ts as compiled), and answers for
 * everything else (405 on a known path with another method, 426 for a plain GET on a WebSocket path,
 * 404 elsewhere). Every route has a last guard: an exception that escapes it (a bug) is answered 500
 * and counted in `handler_errors`; the process goes on.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../engine.js';
import { DEFAULT_MAX_JSON_DEPTH, nestsDeeperThan, parseChannel, type ChannelRef } from '../protocol/index.js';
import { statsJson, statsPrometheus, type Stats, type StatsContext } from '../stats.js';
import { reportHandlerError, type ServerContext } from './context.js';

/** What `/publish` publishes through: the `/pubsub` endpoint, so that HTTP and WebSocket publishes are one path. */
export interface Publisher {
  /** Publishes the way a WebSocket publish would (counted, through the broker); never rejects. */
  publish(channel: ChannelRef, messageJson: string): Promise<unknown>;
  /** True once shutdown has begun: publishes are refused from then on. */
  readonly isDraining: boolean;
}

/**
 * How much of a body over `--max-payload` is read and thrown away before the 413, at least. A client
 * that sends its whole body before it reads (Python's urllib, most HTTP libraries) would otherwise
 * write into a closed socket and see a broken pipe instead of the 413. Past this bound the connection
 * is closed after the 413 without reading on.
 */
export function discardLimit(maxPayload: number): number {
  return Math.max(16 * 1024 * 1024, 16 * maxPayload);
}

/**
 * How much of the body of a `/publish` without the right key is read (and thrown away, nothing kept)
 * before its 401/403: enough for a small request's client to finish writing and read the answer; past
 * it the connection is closed with the answer. A client without the key costs no more than this.
 */
export const UNAUTHORIZED_READ_BYTES = 64 * 1024;

/** The operator's routes: served on the admin listener, and on the main port with `--public-stats`. */
const ADMIN_ROUTES: Record<string, string> = { '/health': 'GET', '/stats': 'GET', '/metrics': 'GET' };
const ROUTES: Record<string, string> = { ...ADMIN_ROUTES, '/publish': 'POST', '/client.js': 'GET', '/favicon.ico': 'GET' };

/**
 * The browser client as compiled, read once. Its source-map comment goes: the map is not served. A
 * server built without it (a broken package) answers 404 there, as for any unknown path.
 */
function browserClient(): string | null {
  try {
    const compiled = readFileSync(new URL('../public/client.js', import.meta.url), 'utf8');
    return compiled.replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n');
  } catch {
    return null;
  }
}

type Route = (res: HttpResponse, req: HttpRequest) => void;

/** A route with its last guard: an exception that escapes it is answered 500 and counted. */
function guarded(ctx: ServerContext, where: string, handler: Route): Route {
  return (res, req) => {
    ctx.stats.httpRequests++;
    try {
      handler(res, req);
    } catch (err) {
      internalError(ctx, res, where, err);
    }
  };
}

/** `/health`, and `/stats` and `/metrics` unless `counters` is false, on `app`. */
function registerAdminRoutes(app: TemplatedApp, ctx: ServerContext, statsContext: () => StatsContext, counters: boolean): void {
  app.get('/health', guarded(ctx, 'GET /health', (res) => {
    const state = ctx.broker.state();
    if (state === 'ready') json(ctx.stats, res, 200, { status: 'ok' });
    else json(ctx.stats, res, 503, { status: 'degraded', broker: ctx.broker.kind, state });
  }));
  if (!counters) return;
  app.get('/stats', guarded(ctx, 'GET /stats', (res) => json(ctx.stats, res, 200, statsJson(ctx.stats, statsContext()))));
  app.get('/metrics', guarded(ctx, 'GET /metrics', (res) => {
    res.writeHeader('Content-Type', 'text/plain; version=0.0.4').end(statsPrometheus(ctx.stats, statsContext()));
  }));
}

/** The admin listener's app (`--admin-port`): the operator's routes, and 404 for everything else. */
export function adminApp(ctx: ServerContext, statsContext: () => StatsContext): TemplatedApp {
  const app = ctx.uws.App();
  registerAdminRoutes(app, ctx, statsContext, true);
  app.any('/*', guarded(ctx, 'admin HTTP', (res, req) => {
    const url = req.getUrl();
    const allowed = ADMIN_ROUTES[url];
    if (allowed) json(ctx.stats, res, 405, { error: 'method_not_allowed', message: `${url} takes ${allowed}` }, { Allow: allowed });
    else json(ctx.stats, res, 404, { error: 'not_found', message: `the admin listener serves ${Object.keys(ADMIN_ROUTES).join(', ')}` });
  }));
  return app;
}

/** Registers the HTTP routes on the main app. */
export function registerHttp(ctx: ServerContext, statsContext: () => StatsContext, publisher: Publisher): void {
  const { app, options } = ctx;
  const route = (where: string, handler: Route) => guarded(ctx, where, handler);
  registerAdminRoutes(app, ctx, statsContext, options.publicStats);
  const client = browserClient();
  if (client !== null) {
    // Any origin may import it (a module script from another origin needs CORS).
    app.get('/client.js', route('GET /client.js', (res) => {
      res.cork(() => {
        res.writeHeader('Content-Type', 'text/javascript; charset=utf-8').writeHeader('Access-Control-Allow-Origin', '*').writeHeader('Cache-Control', 'no-cache').end(client);
      });
    }));
  }
  // A browser asks for it on every page of the server's origin: no icon, and no 404 in its console.
  app.get('/favicon.ico', route('GET /favicon.ico', (res) => void res.writeStatus('204 No Content').end()));
  app.post('/publish', route('POST /publish', (res, req) => {
    // Everything needed from req is read now: it is invalid after this function returns.
    const request = {
      authorization: req.getHeader('authorization'),
      contentLength: req.getHeader('content-length'),
      expectContinue: req.getHeader('expect').toLowerCase() === '100-continue',
    };
    let aborted = false;
    res.onAborted(() => (aborted = true));
    handlePublish(ctx, res, request, publisher, () => aborted).catch((err) => {
      if (!aborted) res.cork(() => internalError(ctx, res, 'POST /publish', err));
      else reportHandlerError(ctx, 'POST /publish', err);
    });
  }));
  app.any('/*', route('HTTP', (res, req) => {
    const url = req.getUrl();
    const allowed = ROUTES[url];
    if (!options.publicStats && (url === '/stats' || url === '/metrics')) {
      json(ctx.stats, res, 404, { error: 'not_found', message: `${url} is served on the admin listener (--admin-port), or here with --public-stats` });
    } else if (allowed) {
      json(ctx.stats, res, 405, { error: 'method_not_allowed', message: `${url} takes ${allowed}` }, { Allow: allowed });
    } else if (url === '/pubsub' || (url === '/echo' && options.echo)) {
      json(ctx.stats, res, 426, { error: 'upgrade_required', message: `${url} is a WebSocket endpoint` });
    } else if (url === '/echo') {
      json(ctx.stats, res, 404, { error: 'not_found', message: '/echo is off on this server (a benchmark starts it with --echo)' });
    } else {
      json(ctx.stats, res, 404, { error: 'not_found', message: `no such path: ${url}` });
    }
  }));
}

/** The last guard's answer: 500 when nothing was sent yet (uWS throws on a finished response). */
function internalError(ctx: ServerContext, res: HttpResponse, where: string, err: unknown): void {
  reportHandlerError(ctx, where, err);
  try {
    json(ctx.stats, res, 500, { error: 'internal_error', message: 'the server failed on this request' });
  } catch {
    // Already answered or gone.
  }
}

interface PublishRequest {
  authorization: string;
  contentLength: string;
  expectContinue: boolean;
}

/**
 * `POST /publish`. The key is checked first: without it the body is read up to
 * {@link UNAUTHORIZED_READ_BYTES} and thrown away, and the answer is 401 (or 403 when HTTP publishing is
 * off). With it, the body is read before any answer (one over the limit included), so that the client
 * is done writing when the answer comes; only a client that waits for `100 Continue` is answered 413 at
 * once, from its `Content-Length`.
 */
async function handlePublish(
  ctx: ServerContext,
  res: HttpResponse,
  request: PublishRequest,
  publisher: Publisher,
  aborted: () => boolean,
): Promise<void> {
  const limit = ctx.options.maxPayload;
  const key = ctx.options.publishKey;
  const authorized = key !== null && bearerMatches(request.authorization, key);
  if (!authorized) {
    const body = await readBody(res, 0, UNAUTHORIZED_READ_BYTES);
    if (aborted()) return;
    // Past the bound the connection goes with the answer: what the client still sends is not read.
    const close = body === 'too_much';
    res.cork(() =>
      key === null
        ? json(ctx.stats, res, 403, { error: 'disabled', message: 'HTTP publishing is off: start the server with --publish-key' }, {}, close)
        : json(ctx.stats, res, 401, { error: 'unauthorized', message: 'Authorization: Bearer <publish key> is missing or wrong' }, {}, close),
    );
    return;
  }
  if (request.expectContinue && request.contentLength !== '' && Number(request.contentLength) > limit) {
    return tooLarge(ctx, res, limit);
  }
  const body = await readBody(res, limit, discardLimit(limit));
  if (aborted()) return;
  res.cork(() => {
    if (body === 'too_much' || body === 'over') return tooLarge(ctx, res, limit);
    if (publisher.isDraining) return json(ctx.stats, res, 503, { error: 'shutting_down', message: 'the server is shutting down: not published' });
    const parsed = parsePublishBody(body, ctx.options.maxJsonDepth);
    if ('error' in parsed) return json(ctx.stats, res, 400, parsed);
    // The broker never rejects; it has the message once publish resolves (local: at once).
    void publisher.publish(parsed.channel, parsed.messageJson).then(() => {
      if (!aborted()) res.cork(() => json(ctx.stats, res, 202, { ok: true }));
    });
  });
}

/** Validates a `/publish` body: `{"channel": <name>, "message": <any JSON>}`, nested at most `maxDepth` deep. */
export function parsePublishBody(
  body: Buffer,
  maxDepth = DEFAULT_MAX_JSON_DEPTH,
): { channel: ChannelRef; messageJson: string } | { error: string; message: string } {
  const text = body.toString('utf8');
  if (nestsDeeperThan(text, maxDepth)) return { error: 'too_deep', message: `body nests arrays and objects more than ${maxDepth} deep (--max-json-depth)` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { error: 'bad_json', message: 'body is not valid JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { error: 'bad_json', message: 'body is not a JSON object' };
  }
  const { channel, message } = parsed as Record<string, unknown>;
  if (typeof channel !== 'string') return { error: 'bad_request', message: '"channel" must be a string' };
  const facility = parseChannel(channel);
  if (!facility) return { error: 'bad_channel', message: `channel ${JSON.stringify(channel.slice(0, 50))} is outside the grammar` };
  if (message === undefined) return { error: 'bad_request', message: '"message" is missing' };
  return { channel: { name: channel, facility }, messageJson: JSON.stringify(message) };
}

/** Whether `Authorization` is `Bearer <key>` (the scheme in any case, as RFC 9110 has it), compared in constant time. */
function bearerMatches(authorization: string, key: string): boolean {
  const scheme = /^bearer +/i.exec(authorization);
  if (!scheme) return false;
  const given = Buffer.from(authorization.slice(scheme[0].length));
  const expected = Buffer.from(key);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Collects the body. Past `limit` bytes it stops keeping and goes on reading to throw the rest away:
 * resolves `'over'` at the body's end, or `'too_much'` as soon as `discard` bytes were read (the
 * connection is then closed with the answer).
 */
function readBody(res: HttpResponse, limit: number, discard: number): Promise<Buffer | 'over' | 'too_much'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    res.onData((chunk, isLast) => {
      if (done) return;
      size += chunk.byteLength;
      if (size > discard) {
        done = true;
        return resolve('too_much');
      }
      if (size <= limit) chunks.push(Buffer.from(chunk.slice(0))); // uWS reuses the chunk's memory after this callback
      else chunks.length = 0;
      if (isLast) {
        done = true;
        resolve(size > limit ? 'over' : Buffer.concat(chunks));
      }
    });
  });
}

/** 413, and the connection is closed: whatever the client still sends is not read. */
function tooLarge(ctx: ServerContext, res: HttpResponse, limit: number): void {
  ctx.stats.httpTooLarge++;
  ctx.stats.httpErrors.too_large = (ctx.stats.httpErrors.too_large ?? 0) + 1;
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
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

/** Writes a JSON response; an error answer is counted by its code (`http_errors`). */
function json(stats: Stats, res: HttpResponse, status: number, body: unknown, headers: Record<string, string> = {}, closeConnection = false): void {
  if (status >= 400) {
    const code = (body as { error?: string }).error ?? String(status);
    stats.httpErrors[code] = (stats.httpErrors[code] ?? 0) + 1;
  }
  res.writeStatus(STATUS_TEXT[status] ?? String(status));
  for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
  res.writeHeader('Content-Type', 'application/json').end(JSON.stringify(body), closeConnection);
}
