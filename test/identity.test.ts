/**
 * Signed identity (HS256 JWTs, jose): where a token may travel, every way one is refused at the upgrade
 * (401, nothing opened), what a token makes of a connection (user, session, grants), refresh and
 * expiry, and user/session channels kept apart across two instances bridged by the real Redis.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SignJWT, type JWTPayload } from 'jose';
import { granted, tokenOf } from '../server/identity.js';
import { TestClient } from './helpers/client.js';
import { startServer } from './helpers/server.js';
import { dropRedisKeys, REDIS_URL, requireRedis } from './helpers/services.js';

const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
const CLI = fileURLToPath(new URL('../server/cli.js', import.meta.url));

/** A token for `sub` (and the other claims), signed with `secret`, expiring in `expiresIn` (jose's form) unless null. */
async function token(claims: JWTPayload & { channels?: string[]; publish?: string[] }, { secret = SECRET, expiresIn = '1h' as string | null } = {}): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();
  if (expiresIn !== null) jwt.setExpirationTime(expiresIn);
  return jwt.sign(new TextEncoder().encode(secret));
}

/** An unsigned token (`alg: none`), as a forger would send. */
function unsigned(claims: JWTPayload): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
}

/** Opens /pubsub and resolves with the welcome, or with the HTTP status and body of a refusal. */
async function connect(url: string, headers: Record<string, string> = {}): Promise<{ client: TestClient; welcome: Record<string, any> } | { status: number; body: string }> {
  try {
    const client = await TestClient.open(url, { headers });
    return { client, welcome: await client.next() };
  } catch (err) {
    const { status, body } = err as { status?: number; body?: string };
    if (status === undefined) throw err;
    return { status, body: body ?? '' };
  }
}

async function open(url: string, headers: Record<string, string> = {}): Promise<{ client: TestClient; welcome: Record<string, any> }> {
  const result = await connect(url, headers);
  if ('status' in result) throw new Error(`refused: ${result.status} ${result.body}`);
  return result;
}

describe('tokenOf and granted', () => {
  it('reads ?token=, then Authorization: Bearer, then the token cookie', () => {
    assert.equal(tokenOf('token=q&x=1', 'Bearer h', 'token=c'), 'q');
    assert.equal(tokenOf('x=1', 'Bearer h', 'token=c'), 'h');
    assert.equal(tokenOf('', 'Basic zzz', 'a=1; token=c%3D; b=2'), 'c=');
    assert.equal(tokenOf('', '', 'a=1'), null);
    assert.equal(tokenOf('', '', 'token=c', 'pubsub, bearer.p'), 'p', 'Sec-WebSocket-Protocol before the cookie');
    assert.equal(tokenOf('', 'Bearer h', '', 'pubsub, bearer.p'), 'h');
    assert.equal(tokenOf('', '', '', 'pubsub, bearer.'), null);
  });

  it('grants names and prefix* patterns', () => {
    assert.ok(granted(['user:john:*'], 'user:john:chat'));
    assert.ok(granted(['news'], 'news'));
    assert.ok(!granted(['news'], 'newsroom'));
    assert.ok(!granted([], 'news'));
  });
});

describe('signed identity on one server', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  let url: string;
  before(async () => {
    server = await startServer({ jwtSecret: SECRET, clientPublish: false, publishKey: 'k' });
    url = `${server.ws}/pubsub`;
  });
  after(() => server.close());

  it('takes a token from the query, the Authorization header or the cookie; welcome names user and session', async () => {
    const t = await token({ sub: 'john', sid: 'sess1' });
    for (const [where, target, headers] of [
      ['query', `${url}?token=${t}`, {}],
      ['header', url, { authorization: `Bearer ${t}` }],
      ['cookie', url, { cookie: `theme=dark; token=${t}` }],
    ] as const) {
      const { client, welcome } = await open(target, headers);
      assert.equal(welcome.user, 'john', where);
      assert.equal(welcome.session, 'sess1', where);
      await client.close();
    }
    const { client, welcome } = await open(url);
    assert.equal(welcome.user, null, 'no token: anonymous');
    assert.equal(welcome.session.length, 16);
    await client.close();
  });

  it('refuses every bad token at the upgrade with 401 and a one-line reason, and opens nothing', async () => {
    const before = (await server.stats()).refused.unauthorized;
    const opened = (await server.stats()).connections_total;
    const cases: [string, string, RegExp][] = [
      ['forged: alg none', unsigned({ sub: 'john', exp: Math.floor(Date.now() / 1000) + 3600 }), /^token must be signed with HS256$|^token is malformed$/],
      ['wrong secret', await token({ sub: 'john' }, { secret: 'another-secret-of-at-least-32-bytes!!' }), /^token signature does not match$/],
      ['malformed', 'not.a.token', /^token is malformed$/],
      ['expired', await token({ sub: 'john' }, { expiresIn: '-10s' }), /^token expired$/],
      ['no sub', await token({}), /^token has no valid sub/],
      ['sub with a colon', await token({ sub: 'jo:hn' }), /^token has no valid sub/],
      ['channels not a list', await token({ sub: 'john', channels: 'news' as unknown as string[] }), /^token channels must be a list/],
    ];
    for (const [what, bad, reason] of cases) {
      const result = await connect(`${url}?token=${bad}`);
      assert.ok('status' in result, `${what}: refused`);
      assert.equal(result.status, 401, what);
      assert.match(result.body, reason, what);
    }
    const after = await server.stats();
    assert.equal(after.refused.unauthorized - before, cases.length);
    assert.equal(after.connections_total, opened, 'no socket was opened for a refused token');
  });

  it('keeps user: and session: channels to their owners; the token may grant more', async () => {
    const john = await open(`${url}?token=${await token({ sub: 'john', sid: 's-john' })}`);
    const mary = await open(`${url}?token=${await token({ sub: 'mary' })}`);
    const granted = await open(`${url}?token=${await token({ sub: 'mary', channels: ['user:john:*'], publish: ['news'] })}`);
    const subscribe = (c: TestClient, channel: string, id: number) => c.request({ action: 'subscribe', payload: { channel }, id });
    assert.equal((await subscribe(john.client, 'user:john:chat', 1)).event, 'subscribed');
    assert.equal((await subscribe(john.client, 'session:s-john:inbox', 2)).event, 'subscribed');
    assert.equal((await subscribe(mary.client, 'user:john:chat', 3)).code, 'forbidden');
    assert.equal((await subscribe(mary.client, 'session:s-john:inbox', 4)).code, 'forbidden');
    assert.equal((await subscribe(mary.client, `session:${mary.welcome.session}:inbox`, 5)).event, 'subscribed');
    assert.equal((await subscribe(granted.client, 'user:john:chat', 6)).event, 'subscribed', 'channels: ["user:john:*"]');
    // This server runs with --no-client-publish: only a token's publish grant lets a client publish.
    assert.equal((await mary.client.request({ action: 'publish', payload: { channel: 'news', message: 1 }, id: 7 })).code, 'forbidden');
    assert.equal((await granted.client.request({ action: 'publish', payload: { channel: 'news', message: 1 }, id: 8 })).event, 'published');
    for (const c of [john, mary, granted]) await c.client.close();
  });

  it('a refresh whose token no longer grants a channel leaves it (unsubscribed, no id); what the rules allow stays', async () => {
    const { client } = await open(`${url}?token=${await token({ sub: 'mary', channels: ['user:john:*'] })}`);
    assert.equal((await client.request({ action: 'subscribe', payload: { channel: 'user:john:chat' }, id: 1 })).event, 'subscribed');
    assert.equal((await client.request({ action: 'subscribe', payload: { channel: 'user:mary:chat' }, id: 2 })).event, 'subscribed');
    client.send({ action: 'refresh', payload: { token: await token({ sub: 'mary' }) }, id: 3 });
    assert.deepEqual(await client.next(), { event: 'unsubscribed', channel: 'user:john:chat' });
    assert.deepEqual(await client.next(), { event: 'refreshed', id: 3 });
    const publish = (channel: string, message: string) =>
      fetch(`${server.http}/publish`, { method: 'POST', headers: { authorization: 'Bearer k' }, body: JSON.stringify({ channel, message }) });
    assert.equal((await publish('user:john:chat', 'not for mary')).status, 202);
    assert.equal((await publish('user:mary:chat', 'hers')).status, 202);
    assert.deepEqual(await client.next(), { event: 'message', channel: 'user:mary:chat', message: 'hers' }, 'only her own channel is left');
    await client.close();
  });

  it('ends a connection whose token expires with goodbye token_expired and 1008', async () => {
    const { client } = await open(`${url}?token=${await token({ sub: 'john' }, { expiresIn: '1s' })}`);
    assert.deepEqual(await client.next(4000), { event: 'goodbye', reason: 'token_expired' });
    assert.equal((await client.closed).code, 1008);
  });

  it('takes a refresh for the same user before expiry, and refuses another user\'s or a bad one', async () => {
    const { client } = await open(`${url}?token=${await token({ sub: 'john' }, { expiresIn: '2s' })}`);
    assert.deepEqual(await client.request({ action: 'refresh', payload: { token: await token({ sub: 'mary' }) }, id: 1 }), {
      event: 'error', code: 'forbidden', message: 'the token is for another user (mary, not john)', id: 1,
    });
    assert.equal((await client.request({ action: 'refresh', payload: { token: 'garbage' }, id: 2 })).code, 'forbidden');
    assert.deepEqual(await client.request({ action: 'refresh', payload: { token: await token({ sub: 'john' }) }, id: 3 }), { event: 'refreshed', id: 3 });
    // The first token ran out after 2 s; the refreshed one holds for an hour.
    assert.ok(await client.silentFor(3500), 'no goodbye after the first token\'s expiry');
    assert.deepEqual(await client.request({ action: 'ping', id: 4 }), { event: 'pong', id: 4 });
    await client.close();
  });
});

describe('--require-auth and the command line', () => {
  it('refuses an upgrade without a token with 401', async () => {
    const server = await startServer({ jwtSecret: SECRET, requireAuth: true });
    try {
      const result = await connect(`${server.ws}/pubsub`);
      assert.ok('status' in result);
      assert.equal(result.status, 401);
      assert.equal(result.body, 'a token is required (--require-auth)');
      const { client, welcome } = await open(`${server.ws}/pubsub?token=${await token({ sub: 'ann' })}`);
      assert.equal(welcome.user, 'ann');
      await client.close();
    } finally {
      await server.close();
    }
  });

  it('checks aud and iss when told to, and allows --jwt-clock-tolerance of skew on exp', async () => {
    const server = await startServer({ jwtSecret: SECRET, jwtAudience: 'chat', jwtIssuer: 'https://auth.example', jwtClockTolerance: 30 });
    try {
      const url = `${server.ws}/pubsub?token=`;
      const good = await open(url + (await token({ sub: 'ann', aud: 'chat', iss: 'https://auth.example' })));
      assert.equal(good.welcome.user, 'ann');
      await good.client.close();
      const refused: [string, JWTPayload, RegExp][] = [
        ['no aud', { sub: 'ann', iss: 'https://auth.example' }, /^token claim aud is not valid/],
        ['another aud', { sub: 'ann', aud: 'billing', iss: 'https://auth.example' }, /^token claim aud is not valid/],
        ['another iss', { sub: 'ann', aud: 'chat', iss: 'https://evil.example' }, /^token claim iss is not valid/],
      ];
      for (const [what, claims, reason] of refused) {
        const result = await connect(url + (await token(claims)));
        assert.ok('status' in result && result.status === 401, what);
        assert.match(result.body, reason, what);
      }
      // Expired 10 s ago by this clock: within the 30 s tolerance, and ended only after exp + 30 s.
      const skewed = await open(url + (await token({ sub: 'ann', aud: 'chat', iss: 'https://auth.example' }, { expiresIn: '-10s' })));
      assert.equal(skewed.welcome.user, 'ann');
      assert.ok(await skewed.client.silentFor(1500), 'not ended at once');
      await skewed.client.close();
      const late = await connect(url + (await token({ sub: 'ann', aud: 'chat', iss: 'https://auth.example' }, { expiresIn: '-40s' })));
      assert.ok('status' in late && late.status === 401 && /^token expired/.test(late.body));
    } finally {
      await server.close();
    }
  });

  it('reads the secret from --jwt-secret-file and refuses bad combinations, naming the flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'jwt-'));
    try {
      const run = (...args: string[]) => spawnSync(process.execPath, [CLI, '--port', '0', '--log-level', 'silent', ...args], { encoding: 'utf8', timeout: 10_000 });
      assert.match(run('--require-auth').stderr, /--require-auth needs --jwt-secret/);
      assert.match(run('--jwt-audience', 'chat').stderr, /--jwt-audience needs --jwt-secret/);
      assert.match(run('--jwt-secret', 'short').stderr, /--jwt-secret must be at least 32 bytes for HS256 \(got 5\)/);
      writeFileSync(join(dir, 'secret'), `${SECRET}\n`);
      assert.match(run('--jwt-secret', SECRET, '--jwt-secret-file', join(dir, 'secret')).stderr, /exclude each other/);
      assert.match(run('--jwt-secret-file', join(dir, 'missing')).stderr, /--jwt-secret-file: cannot read/);
      assert.equal(run('--jwt-secret-file', join(dir, 'secret'), '--help').status, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('user and session channels across two instances bridged by Redis', () => {
  it('delivers a user channel to its owner on the other instance only, cache, history and presence included', async () => {
    await requireRedis();
    const prefix = `id${randomBytes(4).toString('hex')}`;
    const options = { jwtSecret: SECRET, redis: REDIS_URL, prefix, expire: 30, publishKey: 'k', presence: true, history: 10 };
    const a = await startServer(options);
    const b = await startServer(options);
    try {
      const john = await open(`${b.ws}/pubsub?token=${await token({ sub: 'john' })}`);
      const mary = await open(`${b.ws}/pubsub?token=${await token({ sub: 'mary' })}`);
      assert.equal((await john.client.request({ action: 'subscribe', payload: { channel: 'user:john:chat' }, id: 1 })).event, 'subscribed');
      const publish = async (message: unknown): Promise<number> =>
        (await fetch(`${a.http}/publish`, { method: 'POST', headers: { authorization: 'Bearer k' }, body: JSON.stringify({ channel: 'user:john:chat', message }) })).status;
      // The ack came once Redis had the instance's subscription: the publish on the other instance reaches john.
      assert.equal(await publish({ n: 0 }), 202);
      const got = await john.client.next();
      assert.deepEqual([got.channel, got.message, got.offset], ['user:john:chat', { n: 0 }, 1]);
      // Mary is refused the channel, and with it its cached message.
      assert.equal((await mary.client.request({ action: 'subscribe', payload: { channel: 'user:john:chat' }, id: 2 })).code, 'forbidden');
      assert.ok(await mary.client.silentFor(300), 'no cached message for mary');
      const late = await open(`${a.ws}/pubsub?token=${await token({ sub: 'john' })}`);
      assert.equal((await late.client.request({ action: 'subscribe', payload: { channel: 'user:john:chat' }, id: 3 })).event, 'subscribed');
      assert.equal((await late.client.next()).cached, true, 'john on the other instance gets the cached message');
      // Presence of his channel: john's connections on both instances, and mary may not ask.
      const members = (await late.client.request({ action: 'presence', payload: { channel: 'user:john:chat' }, id: 4 })).members as { user: string }[];
      assert.deepEqual(members.map((m) => m.user), ['john', 'john']);
      assert.equal((await mary.client.request({ action: 'presence', payload: { channel: 'user:john:chat' }, id: 5 })).code, 'forbidden');
      // History in Redis: john reads it on either instance; mary may neither read it nor recover from it.
      const kept = await late.client.request({ action: 'history', payload: { channel: 'user:john:chat' }, id: 6 });
      assert.deepEqual(kept.messages, [{ offset: 1, message: { n: 0 } }]);
      assert.equal((await mary.client.request({ action: 'history', payload: { channel: 'user:john:chat' }, id: 7 })).code, 'forbidden');
      const since = { offset: 0, epoch: kept.epoch };
      assert.equal((await mary.client.request({ action: 'subscribe', payload: { channel: 'user:john:chat', since }, id: 8 })).code, 'forbidden');
      assert.ok(await mary.client.silentFor(200), 'nothing replayed to mary');
      for (const c of [john, mary, late]) await c.client.close();
    } finally {
      await Promise.all([a.close(), b.close()]);
      await dropRedisKeys(prefix);
    }
  });
});

describe('history of a user channel', () => {
  it('is read by its owner only', async () => {
    const server = await startServer({ jwtSecret: SECRET, history: 10, publishKey: 'k' });
    try {
      const posted = await fetch(`${server.http}/publish`, { method: 'POST', headers: { authorization: 'Bearer k' }, body: JSON.stringify({ channel: 'user:john:chat', message: 'hi' }) });
      assert.equal(posted.status, 202);
      const john = await open(`${server.ws}/pubsub?token=${await token({ sub: 'john' })}`);
      const mary = await open(`${server.ws}/pubsub?token=${await token({ sub: 'mary' })}`);
      // The publish is kept once the turn that delivers it has run: ask until it is there.
      let messages: { message: string }[] = [];
      for (let i = 0; i < 50 && messages.length === 0; i++) messages = (await john.client.request({ action: 'history', payload: { channel: 'user:john:chat' }, id: i })).messages;
      assert.deepEqual(messages.map((m) => m.message), ['hi']);
      assert.equal((await mary.client.request({ action: 'history', payload: { channel: 'user:john:chat' }, id: 'm' })).code, 'forbidden');
      for (const c of [john, mary]) await c.client.close();
    } finally {
      await server.close();
    }
  });
});

describe('tokens on /echo, and a swarm that brings them', () => {
  it('/echo: a valid token is let in and echoed to, a forged one gets 401, --require-auth refuses none', async () => {
    const server = await startServer({ jwtSecret: SECRET, requireAuth: true });
    try {
      const refused = async (url: string): Promise<number> => TestClient.open(url).then(() => 101, (err: { status?: number }) => err.status ?? NaN);
      assert.equal(await refused(`${server.ws}/echo`), 401);
      assert.equal(await refused(`${server.ws}/echo?token=${await token({ sub: 'ann' }, { secret: 'another-secret-of-at-least-32-bytes' })}`), 401);
      const client = await TestClient.open(`${server.ws}/echo?token=${await token({ sub: 'ann' })}`);
      assert.deepEqual(await client.next(), { event: 'welcome' });
      client.send('ping');
      assert.equal(String(await client.nextRaw()), 'ping');
      await client.close();
      assert.equal((await server.stats()).refused.unauthorized, 2);
    } finally {
      await server.close();
    }
  });

  it('swarm --token-secret signs a token per client: the echo sequence completes against --require-auth; a wrong secret gets every connect refused', async () => {
    const { Swarm } = await import('../clients/swarm/swarm.js');
    const server = await startServer({ jwtSecret: SECRET, requireAuth: true });
    try {
      const signed = await new Swarm({ url: server.ws, scenario: 'echo', clients: 50, ramp: 0.2, delay: 0.2, rounds: 1, workers: 1, tokenSecret: SECRET }).run();
      assert.equal(signed.counters.completed, 50);
      const wrong = await new Swarm({ url: server.ws, scenario: 'echo', clients: 20, ramp: 0.1, delay: 0.2, rounds: 1, workers: 1, tokenSecret: 'another-secret-of-at-least-32-bytes', timeout: 10 }).run();
      assert.equal(wrong.counters.completed, 0);
      assert.equal(wrong.counters.failed, 20);
      assert.equal((await server.stats()).refused.unauthorized, 20);
    } finally {
      await server.close();
    }
  });
});
