/**
 * Every file of examples/ is started as a user would start it (`node dist/examples/<name>.js`, PORT=0)
 * and talked to over real sockets, PostgreSQL included: what its comment promises is what it does.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { TestClient } from './helpers/client.js';
import { POSTGRES_URL, postgresForSuite } from './helpers/services.js';

interface Example {
  port: number;
  ws: string;
  stop(): Promise<void>;
}

/** Starts examples/<name>.ts (built) on a free port and waits for its listening line. */
async function start(name: string, env: Record<string, string> = {}): Promise<Example> {
  const script = fileURLToPath(new URL(`../examples/${name}.js`, import.meta.url));
  const child: ChildProcess = spawn(process.execPath, [script], { env: { ...process.env, PORT: '0', DATABASE_URL: POSTGRES_URL, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr!.on('data', (chunk) => (output += chunk));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 10 s:\n${output}`)), 10_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output += `${line}\n`;
      const match = /^listening on ws:\/\/127\.0\.0\.1:(\d+)\/pubsub$/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}:\n${output}`));
    });
  });
  return {
    port,
    ws: `ws://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await once(child, 'exit');
    },
  };
}

/** Runs `run` against examples/<name>.ts started as {@link start} does, and stops it whatever happens. */
async function withExample(name: string, run: (ex: Example) => Promise<void>, env: Record<string, string> = {}): Promise<void> {
  const ex = await start(name, env);
  try {
    await run(ex);
  } finally {
    await ex.stop();
  }
}

async function client(base: string, query = ''): Promise<TestClient> {
  const c = await TestClient.open(`${base}/pubsub${query}`);
  assert.equal((await c.next()).event, 'welcome');
  return c;
}

async function subscribe(c: TestClient, channel: string): Promise<void> {
  assert.deepEqual(await c.request({ action: 'subscribe', payload: { channel }, id: 1 }), { event: 'subscribed', channel, id: 1 });
}

/** The status of an upgrade the server refuses. */
async function refusedStatus(url: string): Promise<number> {
  return TestClient.open(url).then(
    () => 101,
    (err: Error & { status?: number }) => err.status ?? NaN,
  );
}

describe('examples/', () => {
  it('simplest: a published message reaches a subscriber', async () => {
    await withExample('simplest', async (ex) => {
      const [a, b] = [await client(ex.ws), await client(ex.ws)];
      await subscribe(a, 'news');
      assert.equal((await b.request({ action: 'publish', payload: { channel: 'news', message: 'hi' }, id: 2 })).event, 'published');
      assert.deepEqual(await a.next(), { event: 'message', channel: 'news', message: 'hi' });
      await Promise.all([a.close(), b.close()]);
    });
  });

  it('push-trap: messages arrive wrapped with sender and time; "spam" is acked and dropped', async () => {
    await withExample('push-trap', async (ex) => {
      const [a, b] = [await client(ex.ws), await client(ex.ws)];
      await subscribe(a, 'chat');
      assert.equal((await b.request({ action: 'publish', payload: { channel: 'chat', message: 'spam' }, id: 2 })).event, 'published');
      assert.equal((await b.request({ action: 'publish', payload: { channel: 'chat', message: 'hi' }, id: 3 })).event, 'published');
      const got = await a.next();
      assert.equal(got.event, 'message');
      assert.match(got.message.from, /^anonymous /);
      assert.ok(!Number.isNaN(Date.parse(got.message.at)));
      assert.equal(got.message.message, 'hi', 'the spam before it was dropped');
      assert.ok(await a.silentFor(200));
      await Promise.all([a.close(), b.close()]);
    });
  });

  it('authenticator: unknown users get 401; each user subscribes to its own rooms only', async () => {
    await withExample('authenticator', async (ex) => {
      assert.equal(await refusedStatus(`${ex.ws}/pubsub`), 401);
      assert.equal(await refusedStatus(`${ex.ws}/pubsub?user=mallory`), 401);
      const bob = await client(ex.ws, '?user=bob');
      await subscribe(bob, 'room:lobby');
      const refused = await bob.request({ action: 'subscribe', payload: { channel: 'room:staff' }, id: 2 });
      assert.equal(refused.event, 'error');
      assert.equal(refused.code, 'forbidden');
      const alice = await client(ex.ws, '?user=alice');
      await subscribe(alice, 'room:staff');
      await Promise.all([bob.close(), alice.close()]);
    });
  });

  it('on-open: every connection is subscribed to announcements and greeted', async () => {
    await withExample('on-open', async (ex) => {
      const a = await client(ex.ws);
      assert.deepEqual(await a.next(), { event: 'subscribed', channel: 'announcements' });
      const hello = await a.next();
      assert.equal(hello.event, 'hello');
      const b = await client(ex.ws);
      await b.next();
      await b.next();
      b.send({ action: 'publish', payload: { channel: 'announcements', message: 'doors open' } });
      assert.deepEqual(await a.next(), { event: 'message', channel: 'announcements', message: 'doors open' });
      await Promise.all([a.close(), b.close()]);
    });
  });

  it('receiver: echo returns its params, shout capitalises text and fails on the rest, other methods are unknown', async () => {
    await withExample('receiver', async (ex) => {
      const c = await client(ex.ws);
      const rpc = (method: string, params: unknown, id: number) => c.request({ action: 'rpc', payload: { method, params }, id });
      assert.deepEqual(await rpc('echo', { a: [1, 2] }, 1), { event: 'result', result: { a: [1, 2] }, id: 1 });
      assert.deepEqual(await rpc('shout', 'hey', 2), { event: 'result', result: 'HEY', id: 2 });
      const failed = await rpc('shout', 5, 3);
      assert.deepEqual([failed.event, failed.code, failed.id], ['error', 'rpc_failed', 3]);
      assert.match(failed.message, /shout takes a string/);
      const unknown = await rpc('whisper', 'x', 4);
      assert.deepEqual([unknown.event, unknown.code, unknown.id], ['error', 'unknown_method', 4]);
      await c.close();
    });
  });

  it('presence: members by user name, join and leave as they come and go', async () => {
    await withExample('presence', async (ex) => {
      const ann = await client(ex.ws, '?user=ann');
      await ann.request({ action: 'subscribe', payload: { channel: 'room:lobby', join_leave: true }, id: 1 });
      assert.equal((await ann.next()).member.user, 'ann', 'her own join');
      const bob = await client(ex.ws, '?user=bob');
      await subscribe(bob, 'room:lobby');
      const joined = await ann.next();
      assert.deepEqual([joined.event, joined.member.user], ['join', 'bob']);
      const answer = await bob.request({ action: 'presence', payload: { channel: 'room:lobby' }, id: 2 });
      assert.deepEqual(answer.members.map((m: { user: string }) => m.user).sort(), ['ann', 'bob']);
      await bob.close();
      const left = await ann.next();
      assert.deepEqual([left.event, left.member.user], ['leave', 'bob']);
      await ann.close();
    });
  });

  it('jwt: no token or a forged one gets 401; a signed one names the user, who alone has user:<sub>:*', async () => {
    const secret = 'example-secret-of-at-least-32-bytes!';
    await withExample('jwt', async (ex) => {
      const sign = (key: string) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('ann').setExpirationTime('1h').sign(new TextEncoder().encode(key));
      assert.equal(await refusedStatus(`${ex.ws}/pubsub`), 401);
      assert.equal(await refusedStatus(`${ex.ws}/pubsub?token=${await sign('another-secret-of-at-least-32-bytes')}`), 401);
      const c = await TestClient.open(`${ex.ws}/pubsub?token=${await sign(secret)}`);
      const welcome = await c.next();
      assert.equal(welcome.user, 'ann');
      await subscribe(c, 'user:ann:inbox');
      assert.equal((await c.request({ action: 'subscribe', payload: { channel: 'user:bob:inbox' }, id: 2 })).code, 'forbidden');
      await c.close();
    }, { JWT_SECRET: secret });
  });

  describe('with PostgreSQL', () => {
    const db = postgresForSuite();

    it('pg-monitor: NOTIFY alerts reaches the subscribers of alerts', async () => {
      await withExample('pg-monitor', async (ex) => {
        const c = await client(ex.ws);
        await subscribe(c, 'alerts');
        await db.query(`NOTIFY alerts, '{"level":"high"}'`);
        assert.deepEqual(await c.next(), { event: 'message', channel: 'alerts', message: { level: 'high' } });
        await c.close();
      });
    });

    it('data-binding: inserts, updates and deletes of notes reach table:notes as rows', async () => {
      await withExample('data-binding', async (ex) => {
        const c = await client(ex.ws);
        await subscribe(c, 'table:notes');
        const { rows } = await db.query<{ id: number }>(`INSERT INTO notes (body) VALUES ('first') RETURNING id`);
        const id = rows[0].id;
        await db.query('UPDATE notes SET body = $1 WHERE id = $2', ['second', id]);
        await db.query('DELETE FROM notes WHERE id = $1', [id]);
        assert.deepEqual((await c.next()).message, { op: 'insert', row: { id, body: 'first' } });
        assert.deepEqual((await c.next()).message, { op: 'update', row: { id, body: 'second' } });
        assert.deepEqual((await c.next()).message, { op: 'delete', row: { id, body: 'second' } });
        await c.close();
      });
    });
  });
});
