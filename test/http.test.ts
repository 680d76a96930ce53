/** The HTTP endpoints and routing. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from './helpers/client.js';
import { startServer, type RunningServer } from './helpers/server.js';

describe('HTTP', () => {
  let s: RunningServer;
  const key = 'test-key';
  const publish = (body: string, headers: Record<string, string> = { authorization: `Bearer ${key}` }) =>
    fetch(`${s.http}/publish`, { method: 'POST', headers, body });
  before(async () => {
    s = await startServer({ publishKey: key, maxPayload: 1024 });
  });
  after(() => s.close());

  it('GET /health says ok', async () => {
    const res = await fetch(`${s.http}/health`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  it('GET /stats has the counters, the engine and the broker', async () => {
    const stats = await s.stats();
    for (const field of ['connections', 'subscriptions', 'channels', 'messages_in', 'messages_out', 'errors', 'dropped', 'slow_consumers', 'engine', 'redis', 'uptime_s']) {
      assert.ok(field in stats, field);
    }
    assert.equal(stats.engine.name, 'uws-native');
    assert.equal(stats.redis, 'not configured');
    assert.equal(stats.errors.bad_json, 0);
  });

  it('GET /metrics is Prometheus text with the same counters', async () => {
    const { client } = await TestClient.pubsub(s.ws);
    const res = await fetch(`${s.http}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /^# TYPE pubsub_connections gauge$/m);
    assert.match(text, /^pubsub_connections\{endpoint="pubsub"\} 1$/m);
    assert.match(text, /^pubsub_errors_total\{code="bad_json"\} \d+$/m);
    assert.match(text, /^pubsub_engine_info\{engine="uws-native",version="[^"]+"\} 1$/m);
    for (const line of text.trim().split('\n')) {
      assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? -?\d+(\.\d+)?)$/, line);
    }
    await client.close();
  });

  it('POST /publish reaches WebSocket subscribers, including user and session channels', async () => {
    const { client, welcome } = await TestClient.pubsub(s.ws);
    const inbox = `session:${welcome.session}:inbox`;
    await client.request({ action: 'subscribe', payload: { channel: 'news' } });
    await client.request({ action: 'subscribe', payload: { channel: inbox } });
    let res = await publish(JSON.stringify({ channel: 'news', message: { headline: 'hi' } }));
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { ok: true });
    assert.deepEqual(await client.next(), { event: 'message', channel: 'news', message: { headline: 'hi' } });
    res = await publish(JSON.stringify({ channel: inbox, message: 'private' }));
    assert.equal(res.status, 202);
    assert.deepEqual(await client.next(), { event: 'message', channel: inbox, message: 'private' });
    await client.close();
  });

  it('POST /publish says 401 without or with a wrong key', async () => {
    const body = JSON.stringify({ channel: 'news', message: 1 });
    assert.equal((await publish(body, {})).status, 401);
    assert.equal((await publish(body, { authorization: 'Bearer wrong' })).status, 401);
    assert.equal((await publish(body, { authorization: key })).status, 401);
  });

  it('POST /publish says 400 on a bad body, naming what is wrong', async () => {
    for (const [body, error] of [
      ['not json', 'bad_json'],
      ['[1]', 'bad_json'],
      ['{"message":1}', 'bad_request'],
      ['{"channel":"news"}', 'bad_request'],
      ['{"channel":"a b","message":1}', 'bad_channel'],
    ]) {
      const res = await publish(body);
      assert.equal(res.status, 400, body);
      assert.equal(((await res.json()) as { error: string }).error, error, body);
    }
  });

  it('POST /publish says 413 over --max-payload', async () => {
    const res = await publish(JSON.stringify({ channel: 'news', message: 'x'.repeat(2000) }));
    assert.equal(res.status, 413);
  });

  it('POST /publish is off (403) without --publish-key', async () => {
    const other = await startServer();
    const res = await fetch(`${other.http}/publish`, { method: 'POST', body: '{"channel":"news","message":1}', headers: { authorization: 'Bearer x' } });
    assert.equal(res.status, 403);
    assert.match(((await res.json()) as { message: string }).message, /--publish-key/);
    await other.close();
  });

  it('answers 404 elsewhere, 405 for a wrong method, 426 for a plain GET on a WebSocket path', async () => {
    assert.equal((await fetch(`${s.http}/nope`)).status, 404);
    assert.equal((await fetch(`${s.http}/`)).status, 404);
    const wrong = await fetch(`${s.http}/health`, { method: 'POST' });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'GET');
    assert.equal((await fetch(`${s.http}/publish`)).status, 405);
    assert.equal((await fetch(`${s.http}/pubsub`)).status, 426);
  });

  it('refuses a WebSocket upgrade on another path with 404', async () => {
    await assert.rejects(TestClient.open(`${s.ws}/elsewhere`), /HTTP 404/);
  });
});
