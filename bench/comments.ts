/**
 * `make demo-comments`: live comments (Olive's idea). A comment saved into PostgreSQL, through this
 * program's small HTTP handler, appears at once on every open page: a trigger NOTIFYs each insert, the
 * server's PostgreSQL monitor publishes it on `comments`, and the pages (the browser client) receive it,
 * with "N people here" from presence. The page is http://127.0.0.1:<page-port>/comments; Ctrl-C stops.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import pg from 'pg';
import { COMMENTS_CHANNEL, commentsPage } from '../clients/demos/comments/page.js';
import { interruptible } from '../clients/host/interrupt.js';
import { benchCli, interrupted } from './lib/run.js';
import { startServerProcess } from './lib/servers.js';
import { serverArgs } from '../server/options.js';
import { usageError } from '../server/command-line.js';

const args = await benchCli('demo-comments', '$0 [flags]\n\nLive comments: saved into PostgreSQL, shown at once on every page, with who is here.')
  .option('postgres', { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test', describe: 'the database that keeps the comments (DATABASE_URL)' })
  .option('table', { type: 'string', default: 'comments', describe: 'the table of comments (created with its trigger when missing)' })
  .option('fresh', { type: 'boolean', default: false, describe: 'start with an empty table, and drop it (and its trigger) on exit' })
  .option('page-port', { type: 'number', default: 9081, describe: 'port of the page at /comments' })
  .parseAsync();
const table = args.table as string;
if (!/^[a-z_][a-z0-9_]{0,40}$/.test(table)) {
  usageError('demo-comments', `--table must be a plain lower-case SQL name (got ${JSON.stringify(table)})`);
}
const MAX_BODY = 4096;

const db = new pg.Pool({ connectionString: args.postgres, max: 4 });
try {
  await db.query('SELECT 1');
} catch (err) {
  console.error(`demo-comments: cannot reach PostgreSQL at ${args.postgres} (--postgres): ${(err as Error).message}`);
  process.exit(1);
}
if (args.fresh) await dropTable();
await db.query(`
  CREATE TABLE IF NOT EXISTS ${table} (id serial PRIMARY KEY, name text NOT NULL, body text NOT NULL, at timestamptz NOT NULL DEFAULT now());
  CREATE OR REPLACE FUNCTION ${table}_notify() RETURNS trigger AS $$
  BEGIN
    PERFORM pg_notify('${table}', json_build_object('id', NEW.id, 'name', NEW.name, 'body', NEW.body, 'at', NEW.at)::text);
    RETURN NULL;
  END $$ LANGUAGE plpgsql;
  CREATE OR REPLACE TRIGGER ${table}_inserted AFTER INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION ${table}_notify();
`);

const server = await startServerProcess('ours', [...serverArgs({ presence: true }), '--pg-notify', args.postgres, '--pg-notify-channel', `${table}=${COMMENTS_CHANNEL}`]);
const page = commentsPage(server.url);
try {
  const http = createHttpServer((req, res) => void handle(req, res).catch((err: Error) => answer(res, 500, { error: `the server failed: ${err.message}` })));
  await new Promise<void>((resolve, reject) => {
    http.once('error', (err) => reject(new Error(`--page-port ${args.pagePort}: ${err.message}`)));
    http.listen(args.pagePort, '127.0.0.1', resolve);
  });
  console.log(`demo-comments: live at http://127.0.0.1:${args.pagePort}/comments (comments in ${table}, published on ${COMMENTS_CHANNEL} by the server at ${server.url}); Ctrl-C stops`);
  await new Promise<void>((resolve) => {
    if (interrupted()) return resolve();
    interruptible({ interrupt: () => resolve() });
  });
  http.close();
  console.log('stopped');
} finally {
  await server.stop();
  if (args.fresh) await dropTable();
  await db.end();
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method === 'GET' && (req.url === '/comments' || req.url === '/')) return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
  if (req.method === 'GET' && req.url === '/comments.json') {
    const { rows } = await db.query(`SELECT id, name, body, at FROM (SELECT * FROM ${table} ORDER BY id DESC LIMIT 50) last ORDER BY id`);
    return answer(res, 200, rows);
  }
  if (req.method === 'GET' && req.url === '/favicon.ico') return void res.writeHead(204).end();
  if (req.method === 'POST' && req.url === '/comments') return save(req, res);
  return answer(res, 404, { error: `no such page: ${req.method} ${req.url} (the page is GET /comments)` });
}

/** A comment from the page's form: {"name": 1-40 characters, "body": 1-500}; 201 once saved. */
async function save(req: IncomingMessage, res: ServerResponse): Promise<void> {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > MAX_BODY) return answer(res, 413, { error: `a comment is at most ${MAX_BODY} bytes of JSON` });
  }
  let comment: { name?: unknown; body?: unknown };
  try {
    comment = JSON.parse(text) as typeof comment;
  } catch {
    return answer(res, 400, { error: 'the body must be JSON: {"name": "...", "body": "..."}' });
  }
  const name = typeof comment?.name === 'string' ? comment.name.trim() : '';
  const body = typeof comment?.body === 'string' ? comment.body.trim() : '';
  if (name.length < 1 || name.length > 40) return answer(res, 400, { error: 'name must be 1 to 40 characters' });
  if (body.length < 1 || body.length > 500) return answer(res, 400, { error: 'body must be 1 to 500 characters' });
  const { rows } = await db.query(`INSERT INTO ${table} (name, body) VALUES ($1, $2) RETURNING id`, [name, body]);
  answer(res, 201, { id: rows[0].id });
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function dropTable(): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS ${table}; DROP FUNCTION IF EXISTS ${table}_notify();`);
}
