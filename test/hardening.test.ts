/**
 * Hostile input a client can send on purpose: frames that once took the process down, upgrade
 * requests outside RFC 6455, bodies over the limit, more connections than allowed. Each is answered
 * (an error frame, a close code, an HTTP status), counted, and costs nobody else anything.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { TestClient } from './helpers/client.js';
import { rawHttp, upgradeRequest } from './helpers/raw.js';
import { startServer, type RunningServer } from './helpers/server.js';
import { PYTHON } from './helpers/services.js';

const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('hostile frames', () => {
  let s: RunningServer;
  before(async () => {
    s = await startServer({ publishKey: 'k' });
  });
  after(() => s.close());

  it('answers a publish nested 4,100 deep (an 8 KB frame) with too_deep, and everyone goes on', async () => {
    const { client: bystander } = await TestClient.pubsub(s.ws);
    await bystander.request({ action: 'subscribe', payload: { channel: 'news' } });
    const { client } = await TestClient.pubsub(s.ws);
    for (const depth of [4100, 30_000]) {
      const text = `{"action":"publish","payload":{"channel":"news","message":${nested(depth)}},"id":1}`;
      const reply = await client.request(text);
      assert.equal(reply.event, 'error');
      assert.equal(reply.code, 'too_deep');
    }
    // 64 deep is the default limit for the whole frame (the publish itself takes two levels), and is taken.
    const ok = await client.request(`{"action":"publish","payload":{"channel":"news","message":${nested(62)}},"id":2}`);
    assert.deepEqual(ok, { event: 'published', channel: 'news', id: 2 });
    assert.equal((await bystander.next()).message.length, 1);
    assert.equal((await client.request({ action: 'ping', id: 3 })).event, 'pong');
    const stats = await s.stats();
    assert.equal(stats.errors.too_deep, 2);
    assert.equal(stats.handler_errors, 0);
    await Promise.all([client.close(), bystander.close()]);
  });

  it('answers the same body on POST /publish with 400 too_deep', async () => {
    const res = await fetch(`${s.http}/publish`, {
      method: 'POST',
      headers: { authorization: 'Bearer k' },
      body: `{"channel":"news","message":${nested(4100)}}`,
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: string }).error, 'too_deep');
    assert.equal((await fetch(`${s.http}/health`)).status, 200);
  });

  it('ends only the connection whose handler threw (goodbye server_error, 1011), counted', async () => {
    const { client: bystander } = await TestClient.pubsub(s.ws);
    const { client } = await TestClient.pubsub(s.ws);
    // A fault injected through the public API: the next frame's counter update throws.
    const stats = s.server.stats;
    let value = stats.messagesIn;
    Object.defineProperty(stats, 'messagesIn', {
      configurable: true,
      get: () => value,
      set: (v: number) => {
        Object.defineProperty(stats, 'messagesIn', { configurable: true, writable: true, value: v });
        throw new Error('injected fault');
      },
    });
    client.send({ action: 'ping' });
    assert.deepEqual(await client.next(), { event: 'goodbye', reason: 'server_error' });
    assert.equal((await client.closed).code, 1011);
    assert.equal((await bystander.request({ action: 'ping', id: 1 })).event, 'pong');
    assert.equal((await s.stats()).handler_errors, 1);
    value = 0;
    await bystander.close();
  });
});

describe('the upgrade handshake', () => {
  let s: RunningServer;
  before(async () => {
    s = await startServer({ maxHeaderSize: 4096 });
  });
  after(() => s.close());

  it('refuses Sec-WebSocket-Version 8 with 426 naming version 13', async () => {
    const res = await rawHttp(s.port, upgradeRequest('/pubsub', [], '8'));
    assert.equal(res.status, 426);
    assert.equal(res.headers['sec-websocket-version'], '13');
  });

  it('opens nothing for a malformed Sec-WebSocket-Key', async () => {
    // uWS itself takes a request whose key is not 24 characters for plain HTTP (426 from the router);
    // a 24-character key that is not base64 of 16 bytes reaches the upgrade check (400).
    const short = await rawHttp(s.port, upgradeRequest('/echo').replace('dGhlIHNhbXBsZSBub25jZQ==', 'short'));
    assert.equal(short.status, 426);
    const bad = await rawHttp(s.port, upgradeRequest('/echo').replace('dGhlIHNhbXBsZSBub25jZQ==', 'dGhlIHNhbXBsZSBub25jZQ!!'));
    assert.equal(bad.status, 400);
  });

  it('refuses headers over --max-header-size with 431, and a 100 KB header too', async () => {
    for (const size of [5000, 100_000]) {
      const res = await rawHttp(s.port, upgradeRequest('/pubsub', [`X-Filler: ${'a'.repeat(size)}`]));
      assert.ok(res.status === 431 || res.status === 0, `status ${res.status}`);
    }
    const stats = await s.stats();
    assert.ok(stats.refused.header_too_large >= 1);
    assert.equal(stats.refused.handshake, 2);
    assert.equal(stats.connections, 0);
    assert.equal((await fetch(`${s.http}/health`)).status, 200);
  });
});

describe('connection limits', () => {
  it('past --max-connections refuses the upgrade with 503 at once and still answers /health', async () => {
    const s = await startServer({ maxConnections: 3 });
    const clients = await Promise.all([1, 2, 3].map(() => TestClient.pubsub(s.ws)));
    await assert.rejects(TestClient.open(`${s.ws}/echo`), /HTTP 503/);
    assert.equal((await fetch(`${s.http}/health`)).status, 200);
    const stats = await s.stats();
    assert.equal(stats.refused.max_connections, 1);
    assert.equal(stats.max_connections, 3);
    await clients[0].client.close();
    const again = await TestClient.pubsub(s.ws);
    await Promise.all([...clients.slice(1), again].map(({ client }) => client.close()));
    await s.close();
  });

  it('past --max-connections-per-ip refuses that address with 429, not the others', async () => {
    const s = await startServer({ maxConnectionsPerIp: 2 });
    const clients = await Promise.all([1, 2].map(() => TestClient.open(`${s.ws}/echo?rounds=0`)));
    await assert.rejects(TestClient.open(`${s.ws}/pubsub`), /HTTP 429/);
    const other = await TestClient.open(`${s.ws}/pubsub`, { localAddress: '127.0.0.2' });
    assert.equal((await other.next()).event, 'welcome');
    assert.equal((await s.stats()).refused.per_ip, 1);
    await clients[0].close();
    const third = await TestClient.open(`${s.ws}/pubsub`);
    await Promise.all([clients[1], other, third].map((c) => c.close()));
    await s.close();
  });

  it('a malformed token (cookie or query) is 401 on both endpoints, and the address keeps its slot', async () => {
    const s = await startServer({ jwtSecret: 'a-test-secret-of-at-least-32-bytes!!', maxConnectionsPerIp: 1 });
    for (const path of ['/pubsub', '/echo?rounds=0']) {
      for (const cookie of ['token=%', 'token=%E0%A4%A', 'a=1; token=%zz']) {
        const answer = await rawHttp(s.port, upgradeRequest(path, [`Cookie: ${cookie}`]));
        assert.equal(answer.status, 401, `${path} with Cookie: ${cookie}`);
      }
    }
    for (const path of ['/pubsub?token=%', '/echo?rounds=0&token=%E0%A4%A']) {
      assert.equal((await rawHttp(s.port, upgradeRequest(path))).status, 401, path);
    }
    const stats = await s.stats();
    assert.equal(stats.handler_errors, 0, 'no handler threw');
    assert.equal(stats.refused.unauthorized, 8);
    // One connection per address: it is there only if every refusal gave its slot back.
    const client = await TestClient.open(`${s.ws}/pubsub`);
    assert.equal((await client.next()).event, 'welcome');
    await client.close();
    await s.close();
  });

  it('defaults --max-connections to the open-file limit less a reserve', async () => {
    const s = await startServer();
    const stats = await s.stats();
    const limit = Number(/Max open files\s+(\d+)/.exec(await (await import('node:fs/promises')).readFile('/proc/self/limits', 'utf8'))![1]);
    assert.ok(stats.max_connections < limit && stats.max_connections >= limit - 1000, `${stats.max_connections} for ${limit} files`);
    await s.close();
  });
});

describe('POST /publish over the size limit', () => {
  let s: RunningServer;
  before(async () => {
    s = await startServer({ publishKey: 'k' });
  });
  after(() => s.close());

  it('without the key, answers 401 after reading at most 64 KiB of a large body, and closes', async () => {
    // Announces 10 MiB and sends 1 MiB, then waits: the answer must not wait for the rest.
    const head = `POST /publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n`;
    const started = Date.now();
    const res = await rawHttp(s.port, Buffer.concat([Buffer.from(head), Buffer.alloc(1024 * 1024, 'x')]), 5000);
    assert.equal(res.status, 401);
    assert.equal(JSON.parse(res.body).error, 'unauthorized');
    assert.ok(Date.now() - started < 4000, 'answered and closed before the read timed out');
    // A small body without the key: read whole, 401, the connection kept for the next request.
    assert.equal((await fetch(`${s.http}/publish`, { method: 'POST', body: '{"channel":"news","message":1}' })).status, 401);
  });

  it('takes the Bearer scheme in any case', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const res = await fetch(`${s.http}/publish`, { method: 'POST', headers: { authorization: `${scheme} k` }, body: '{"channel":"news","message":1}' });
      assert.equal(res.status, 202, scheme);
    }
    assert.equal((await fetch(`${s.http}/publish`, { method: 'POST', headers: { authorization: 'Basic k' }, body: '{"channel":"news","message":1}' })).status, 401);
  });

  it('answers 413 to a client that sends 5 MiB before it reads (raw socket)', async () => {
    const body = Buffer.alloc(5 * 1024 * 1024, 'x');
    const head = `POST /publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: ${body.length}\r\n\r\n`;
    const res = await rawHttp(s.port, Buffer.concat([Buffer.from(head), body]));
    assert.equal(res.status, 413);
  });

  it("answers 413 to Python's urllib, which sees no broken pipe", async () => {
    const script = [
      'import sys, urllib.request, urllib.error',
      'req = urllib.request.Request(sys.argv[1], data=b"x" * (5 * 1024 * 1024), headers={"Authorization": "Bearer k"})',
      'try:',
      '    urllib.request.urlopen(req)',
      'except urllib.error.HTTPError as e:',
      '    print(e.code)',
    ].join('\n');
    const { stdout } = await promisify(execFile)(PYTHON, ['-c', script, `${s.http}/publish`]);
    assert.equal(stdout.trim(), '413');
    assert.equal((await s.stats()).http_too_large, 2);
  });
});
