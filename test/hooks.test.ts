/**
 * Hooks (the library API, server/hooks.ts): each is called where the contract says, may refuse or
 * change what it is given, and when it throws or hangs its connection gets an error frame, the failure
 * is counted, and every other connection goes on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientError, Refusal, type HookConnection, type Hooks } from '../server/index.js';
import { TestClient } from './helpers/client.js';
import { eventually, startServer } from './helpers/server.js';

async function withServer(hooks: Hooks, run: (server: Awaited<ReturnType<typeof startServer>>) => Promise<void>, options = {}): Promise<void> {
  const server = await startServer({ hooks, hookTimeout: 300, ...options });
  try {
    await run(server);
  } finally {
    await server.close();
  }
}

const subscribe = (channel: string, id: number) => ({ action: 'subscribe', payload: { channel }, id });
const publish = (channel: string, message: unknown, id?: number) => ({ action: 'publish', payload: { channel, message }, ...(id === undefined ? {} : { id }) });

describe('hooks', () => {
  it('canSubscribe and canPublish refuse with forbidden, sync or async; the rules come first', async () => {
    const asked: string[] = [];
    await withServer(
      {
        canSubscribe: (_conn, channel) => (asked.push(channel), channel !== 'secret'),
        canPublish: async (_conn, channel, message) => channel !== 'readonly' && (message as { ok?: boolean }).ok !== false,
      },
      async (server) => {
        const { client } = await TestClient.pubsub(server.ws);
        assert.equal((await client.request(subscribe('news', 1))).event, 'subscribed');
        assert.deepEqual(await client.request(subscribe('secret', 2)), { event: 'error', code: 'forbidden', message: 'the canSubscribe hook refused secret', id: 2 });
        assert.equal((await client.request(subscribe('user:john:x', 3))).code, 'forbidden');
        assert.deepEqual(asked, ['news', 'secret'], 'a channel the rules refuse never reaches the hook');
        assert.equal((await client.request(publish('readonly', 1, 4))).code, 'forbidden');
        assert.equal((await client.request(publish('news', { ok: false }, 5))).code, 'forbidden');
        assert.equal((await client.request(publish('news', { ok: true }, 6))).event, 'published');
        assert.deepEqual((await client.next()).message, { ok: true });
        await client.close();
      },
    );
  });

  it('a channel canSubscribe refuses answers no history, no recovery and no presence either: one access rule for every read', async () => {
    const asked: string[] = [];
    await withServer(
      { canSubscribe: (_conn, channel) => (asked.push(channel), channel !== 'room:staff') },
      async (server) => {
        const { client } = await TestClient.pubsub(server.ws);
        // Messages kept on the refused channel, published from the server side.
        for (const n of [1, 2]) assert.equal((await fetch(`${server.http}/publish`, { method: 'POST', headers: { authorization: 'Bearer k' }, body: JSON.stringify({ channel: 'room:staff', message: n }) })).status, 202);
        const refused = { event: 'error', code: 'forbidden', message: 'the canSubscribe hook refused room:staff' };
        assert.deepEqual(await client.request(subscribe('room:staff', 1)), { ...refused, id: 1 });
        assert.deepEqual(await client.request({ action: 'history', payload: { channel: 'room:staff' }, id: 2 }), { ...refused, id: 2 });
        assert.deepEqual(await client.request({ action: 'subscribe', payload: { channel: 'room:staff', since: { offset: 0, epoch: 'x' } }, id: 3 }), { ...refused, id: 3 });
        // An allowed channel reads as before, through the same rule.
        const history = await client.request({ action: 'history', payload: { channel: 'room:open' }, id: 4 });
        assert.equal(history.event, 'history');
        assert.equal((await client.request(subscribe('room:open', 5))).event, 'subscribed');
        assert.equal((await client.request({ action: 'presence', payload: { channel: 'room:open' }, id: 6 })).event, 'presence');
        assert.deepEqual(asked, ['room:staff', 'room:staff', 'room:staff', 'room:open', 'room:open', 'room:open']);
        await client.close();
      },
      { history: 10, presence: true, publishKey: 'k' },
    );
  });

  it('runs the push traps in order: they change a message or drop it, and the publisher is acked either way', async () => {
    await withServer(
      {
        onPublish: [
          (conn, _channel, message) => ({ text: message, from: conn.session }),
          async (_conn, channel, message) => ((message as { text: string }).text === 'drop me' ? false : { ...(message as object), channel }),
        ],
      },
      async (server) => {
        const { client: sub } = await TestClient.pubsub(server.ws);
        await sub.request(subscribe('news', 1));
        const { client: pub, welcome } = await TestClient.pubsub(server.ws);
        assert.deepEqual(await pub.request(publish('news', 'hello', 2)), { event: 'published', channel: 'news', id: 2 });
        assert.deepEqual((await sub.next()).message, { text: 'hello', from: welcome.session, channel: 'news' });
        assert.deepEqual(await pub.request(publish('news', 'drop me', 3)), { event: 'published', channel: 'news', id: 3 });
        assert.ok(await sub.silentFor(200), 'a dropped message reaches nobody');
        await Promise.all([sub.close(), pub.close()]);
      },
    );
  });

  it('answers one connection\'s rpc calls in the order sent, one receiver at a time', async () => {
    let running = 0;
    let most = 0;
    const timed = async (ms: number): Promise<number> => {
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, ms));
      running--;
      return ms;
    };
    await withServer({ rpc: { wait: (_conn, ms) => timed(ms as number) } }, async (server) => {
      const { client } = await TestClient.pubsub(server.ws);
      // The first call takes longest: answered first all the same.
      const waits = [120, 60, 1, 30, 1];
      waits.forEach((ms, i) => client.send({ action: 'rpc', payload: { method: 'wait', params: ms }, id: i + 1 }));
      const answers = [];
      for (let i = 0; i < waits.length; i++) answers.push(await client.next());
      assert.deepEqual(answers.map((a) => a.id), [1, 2, 3, 4, 5]);
      assert.deepEqual(answers.map((a) => a.result), waits);
      assert.equal(most, 1, 'one receiver of the connection at a time');
      await client.close();
    });
  });

  it('calls receivers: a result, rpc_failed with a ClientError\'s message and nothing of another error, unknown_method', async () => {
    await withServer(
      {
        rpc: {
          echo: (conn, params) => ({ params, user: conn.user }),
          fail: () => Promise.reject(new ClientError('no such order')),
          leak: () => Promise.reject(new Error('connect ECONNREFUSED 10.0.0.5:5432 (db password hunter2)')),
        },
      },
      async (server) => {
        const { client } = await TestClient.pubsub(server.ws);
        const call = (method: string, params: unknown, id: number) => client.request({ action: 'rpc', payload: { method, params }, id });
        assert.deepEqual(await call('echo', { n: 1 }, 1), { event: 'result', result: { params: { n: 1 }, user: null }, id: 1 });
        assert.deepEqual(await call('fail', null, 2), { event: 'error', code: 'rpc_failed', message: 'no such order', id: 2 });
        assert.deepEqual(await call('nope', null, 3), { event: 'error', code: 'unknown_method', message: 'no method "nope"', id: 3 });
        assert.deepEqual(await call('leak', null, 5), { event: 'error', code: 'rpc_failed', message: 'the receiver failed', id: 5 }, 'an error\'s own text stays in the log');
        assert.equal((await call('toString', null, 4)).code, 'unknown_method', 'only the receivers given, not what objects inherit');
        assert.equal((await server.stats()).hook_errors.rpc, 2);
        await client.close();
      },
    );
  });

  it('answers a hook that throws or hangs with hook_failed for that connection only, counted, while others go on', async () => {
    await withServer(
      {
        canSubscribe: (_conn, channel) => {
          if (channel === 'boom') throw new Error('the hook broke');
          if (channel === 'hang') return new Promise<boolean>(() => undefined);
          return true;
        },
      },
      async (server) => {
        const { client: a } = await TestClient.pubsub(server.ws);
        const { client: b } = await TestClient.pubsub(server.ws);
        assert.deepEqual(await a.request(subscribe('boom', 1)), { event: 'error', code: 'hook_failed', message: 'the canSubscribe hook failed', id: 1 }, 'nothing of what the hook threw');
        const started = Date.now();
        a.send(subscribe('hang', 2));
        // While a's hook hangs, b is served at once.
        assert.equal((await b.request({ action: 'ping', id: 9 })).event, 'pong');
        assert.ok(Date.now() - started < 250, 'b did not wait for the hook of a');
        const hung = await a.next();
        assert.equal(hung.code, 'hook_failed');
        assert.match(hung.message, /took longer than 300 ms/);
        assert.ok(Date.now() - started >= 290, 'the timeout was --hook-timeout');
        // a's requests after the hung one ran after it, in order, and a is still served.
        assert.equal((await a.request(subscribe('fine', 3))).event, 'subscribed');
        const stats = await server.stats();
        assert.equal(stats.hook_errors.canSubscribe, 2);
        assert.equal(stats.hook_timeouts, 1);
        assert.equal(stats.handler_errors, 0);
        await Promise.all([a.close(), b.close()]);
      },
    );
  });

  it('keeps each connection\'s requests in order while async hooks take different times', async () => {
    await withServer(
      { canSubscribe: (_conn, channel) => new Promise((resolve) => setTimeout(() => resolve(true), channel === 'slow' ? 80 : 1)) },
      async (server) => {
        const { client } = await TestClient.pubsub(server.ws);
        client.send(subscribe('slow', 1));
        client.send(subscribe('fast', 2));
        client.send({ action: 'ping', id: 3 });
        assert.deepEqual([(await client.next()).id, (await client.next()).id, (await client.next()).id], [1, 2, 3]);
        await client.close();
      },
    );
  });

  it('onOpen may subscribe the connection and send it something; onClose hears the close code', async () => {
    const closed: [string, number][] = [];
    await withServer(
      {
        onOpen: async (conn: HookConnection) => {
          conn.subscribe(`session:${conn.session}:inbox`);
          conn.send({ event: 'hello', session: conn.session });
        },
        onClose: (conn, code) => void closed.push([conn.id, code]),
      },
      async (server) => {
        const { client, welcome } = await TestClient.pubsub(server.ws);
        assert.deepEqual(await client.next(), { event: 'subscribed', channel: `session:${welcome.session}:inbox` });
        assert.deepEqual(await client.next(), { event: 'hello', session: welcome.session });
        const posted = await fetch(`${server.http}/publish`, { method: 'POST', headers: { authorization: 'Bearer k' }, body: JSON.stringify({ channel: `session:${welcome.session}:inbox`, message: 'for you' }) });
        assert.equal(posted.status, 202);
        assert.equal((await client.next()).message, 'for you');
        client.ws.close(4000);
        await eventually(() => closed.length === 1);
        assert.deepEqual(closed, [[welcome.connection, 4000]]);
      },
      { publishKey: 'k' },
    );
  });

  it('authenticate names the user, refuses with 401 or 403, and a failing one gets 500, counted', async () => {
    await withServer(
      {
        authenticate: (request) => {
          const key = request.headers['x-api-key'];
          if (key === 'broken') throw new Error('the user database is down');
          if (key === 'banned') throw new Refusal(403, 'this key is banned');
          if (key === undefined) throw new Refusal(401, 'an x-api-key header is required');
          return { user: key };
        },
      },
      async (server) => {
        const url = `${server.ws}/pubsub`;
        const { welcome } = await TestClient.open(url, { headers: { 'x-api-key': 'ann' } }).then(async (client) => ({ client, welcome: await client.next() }));
        assert.equal(welcome.user, 'ann');
        const refused = (headers: Record<string, string>) => TestClient.open(url, { headers }).then(() => null, (err: { status: number; body: string }) => [err.status, err.body]);
        assert.deepEqual(await refused({ 'x-api-key': 'banned' }), [403, 'this key is banned']);
        assert.deepEqual(await refused({}), [401, 'an x-api-key header is required']);
        assert.deepEqual(await refused({ 'x-api-key': 'broken' }), [500, 'the authenticate hook failed']);
        const stats = await server.stats();
        assert.equal(stats.hook_errors.authenticate, 1);
        assert.equal(stats.refused.unauthorized, 2);
        assert.equal(stats.refused.hook_failed, 1);
      },
    );
  });
});
