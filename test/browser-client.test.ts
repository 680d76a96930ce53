/**
 * The browser client (server/public/client.ts), run in Node with the `ws` constructor against real
 * servers: what the server serves at /client.js, subscribe and publish with acks, errors as ServerError,
 * rpc, presence, history, its states, and a reconnect after a server restart that loses nothing when
 * the history is kept in Redis. The same file runs in Chromium in test/browser.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import { connect, ServerError, type PubSubClient, type State } from '../server/public/client.js';
import { onFreePort } from './helpers/ports.js';
import { eventually, startServer } from './helpers/server.js';
import { dropRedisKeys, REDIS_URL } from './helpers/services.js';


/** Resolves with the `n`-th value `listen` reports. */
function nth<T>(n: number, listen: (push: (value: T) => void) => void): Promise<T[]> {
  const seen: T[] = [];
  return new Promise((resolve) => listen((value) => {
    seen.push(value);
    if (seen.length === n) resolve(seen);
  }));
}

const opened = (client: PubSubClient): Promise<void> =>
  client.state === 'open' ? Promise.resolve() : new Promise((resolve) => { const off = client.on('state', (s) => s === 'open' && (off(), resolve())); });

describe('the browser client, in Node', () => {
  const clients: PubSubClient[] = [];
  const open = (url: string, options: Parameters<typeof connect>[1] = {}): PubSubClient => {
    const client = connect(url, { WebSocket, ...options });
    clients.push(client);
    return client;
  };
  after(() => clients.forEach((c) => c.close()));

  it('is served at /client.js as the compiled module, importable from any origin', async () => {
    const server = await startServer();
    try {
      const res = await fetch(`${server.http}/client.js`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/javascript/);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      const body = await res.text();
      const compiled = readFileSync(new URL('../server/public/client.js', import.meta.url), 'utf8');
      assert.equal(body, compiled.replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n'));
      assert.match(body, /export function connect\(/);
      assert.doesNotMatch(body, /^import /m, 'no imports: the file stands alone');
      assert.equal((await fetch(`${server.http}/favicon.ico`)).status, 204, 'no 404 in a page\'s console for the icon');
    } finally {
      await server.close();
    }
  });

  it('sends its token in Sec-WebSocket-Protocol, never in the URL', async () => {
    const secret = 'a-client-test-secret-of-32-bytes!!!';
    const urls: string[] = [];
    const server = await startServer({
      jwtSecret: secret,
      hooks: { authenticate: (request) => (urls.push(request.url), request.token && { user: request.token.user }), rpc: { whoami: (conn) => conn.user } },
    });
    try {
      const { SignJWT } = await import('jose');
      const jwt = await new SignJWT({ sub: 'ann' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(secret));
      const client = open(server.ws, { token: () => jwt });
      await opened(client);
      assert.equal(await client.rpc('whoami'), 'ann');
      assert.deepEqual(urls, ['/pubsub'], 'no token in the URL the server saw');
    } finally {
      await server.close();
    }
  });

  it('subscribes, publishes with an ack, and gets errors, rpc, presence and history answered', async () => {
    const server = await startServer({ presence: true, history: 10, hooks: { rpc: { add: (_conn, params) => (params as number[]).reduce((a, b) => a + b, 0) } } });
    try {
      const a = open(server.ws);
      const b = open(`${server.ws}/pubsub`);
      const states: State[] = [];
      a.on('state', (s) => states.push(s));
      const got = nth<[unknown, number | undefined]>(2, (push) => {
        const off = a.subscribe('news', (message, meta) => push([message, meta.offset]));
        void off.ready.then(async () => {
          await b.publish('news', { n: 1 });
          await b.publish('news', { n: 2 });
        });
      });
      assert.deepEqual(await got, [[{ n: 1 }, 1], [{ n: 2 }, 2]]);
      assert.deepEqual(states, ['open']);
      await assert.rejects(b.publish('user:x:inbox', 1), (err: Error) => err instanceof ServerError && err.code === 'forbidden');
      await assert.rejects(a.subscribe('bad channel!', () => undefined).ready, (err: Error) => err instanceof ServerError && err.code === 'bad_channel');
      assert.equal(await a.rpc('add', [1, 2, 3]), 6);
      await assert.rejects(a.rpc('nope'), (err: Error) => err instanceof ServerError && err.code === 'unknown_method');
      assert.equal((await a.presence('news')).length, 1);
      const history = await b.history('news', 5);
      assert.deepEqual(history.messages.map((m) => m.message), [{ n: 1 }, { n: 2 }]);
      a.close();
      assert.equal(a.state, 'closed');
    } finally {
      await server.close();
    }
  });

  it('reconnects after a server restart, subscribes again from its last offset, and loses nothing (history in Redis)', async () => {
    const prefix = `client-${randomBytes(4).toString('hex')}`;
    const options = { redis: REDIS_URL, prefix, history: 100, publishKey: 'k' };
    // Its port lies below the ephemeral range: no outgoing socket (the client's own reconnects among them)
    // can be handed it while the server is down.
    let first = await onFreePort((port) => startServer({ ...options, port }));
    const other = await startServer(options);
    try {
      const client = open(first.ws, { minDelayMs: 20, maxDelayMs: 200 });
      const states: State[] = [];
      client.on('state', (s) => states.push(s));
      const seen: number[] = [];
      const resubscribed = nth<[string, boolean]>(1, (push) => client.on('resubscribed', (channel, recovered) => push([channel, recovered])));
      const sub = client.subscribe('feed', (message) => seen.push(message as number));
      await sub.ready;
      const publish = async (n: number) => {
        const res = await fetch(`${other.http}/publish`, { method: 'POST', headers: { authorization: 'Bearer k' }, body: JSON.stringify({ channel: 'feed', message: n }) });
        assert.equal(res.status, 202);
      };
      for (let n = 1; n <= 5; n++) await publish(n);
      await eventually(() => seen.length === 5);

      const port = first.port;
      await first.close(); // goodbye, 1001: the client starts reconnecting
      await eventually(() => states.includes('reconnecting'));
      for (let n = 6; n <= 10; n++) await publish(n); // while it is away
      first = await startServer({ ...options, port });
      assert.deepEqual(await resubscribed, [['feed', true]]);
      await publish(11);
      await eventually(() => seen.length >= 11);
      assert.deepEqual(seen, Array.from({ length: 11 }, (_, i) => i + 1), 'every message once, in order');
      assert.deepEqual(states, ['open', 'reconnecting', 'open']);
      await opened(client);
    } finally {
      await Promise.all([first.close(), other.close()]);
      await dropRedisKeys(prefix);
    }
  });
});
