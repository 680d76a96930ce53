/**
 * The server's log, read from a child server's stderr (not a terminal: JSON lines): events leave a line
 * (start, refusals at the connection limit, a slow consumer cut, a Redis outage and its end, shutdown),
 * floods leave one line, messages and bad frames leave none, and `--log-level` filters.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClient } from './helpers/client.js';
import { spawnServer, type ServerChild } from './helpers/process.js';
import { redisProcess } from './helpers/redis-process.js';
import { eventually } from './helpers/server.js';
import WebSocket from 'ws';

interface LogLine {
  level: number;
  msg: string;
  pid: number;
  [key: string]: unknown;
}

/** The JSON log lines a child printed so far (its stdout banner lines are not JSON and are skipped). */
function logLines(server: ServerChild): LogLine[] {
  return server
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

const WARN = 40;
const INFO = 30;

/** Opens an upgrade and resolves with its HTTP status when it is refused, or 101 when it opens. */
function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', (err) => reject(err));
  });
}

describe('the log', () => {
  it('writes JSON lines for events, one line for a flood of refusals, none per message', async () => {
    const server = await spawnServer(['--max-connections', '2']);
    try {
      await eventually(() => logLines(server).some((l) => l.msg === 'listening'));
      const start = logLines(server).find((l) => l.msg === 'listening')!;
      assert.equal(start.level, INFO);
      assert.equal(start.pid, server.pid);
      assert.equal(start.port, server.port);

      const held = [await TestClient.pubsub(server.ws), await TestClient.pubsub(server.ws)];
      // Messages and bad frames are answered, never logged.
      const { client } = held[0];
      for (let i = 0; i < 200; i++) client.send({ action: 'publish', payload: { channel: 'news', message: i } });
      for (let i = 0; i < 50; i++) client.send('not json');
      client.send({ action: 'ping', id: 2 });
      let errors = 0;
      for (let frame = await client.next(); frame.event !== 'pong'; frame = await client.next()) errors += frame.code === 'bad_json' ? 1 : 0;
      assert.equal(errors, 50);
      const before = logLines(server).length;

      const statuses = await Promise.all(Array.from({ length: 20 }, () => upgradeStatus(`${server.ws}/pubsub`)));
      assert.deepEqual(new Set(statuses), new Set([503]));
      await eventually(() => logLines(server).some((l) => l.msg.startsWith('upgrade refused')));
      const refusals = logLines(server).filter((l) => l.msg.startsWith('upgrade refused'));
      assert.equal(refusals.length, 1, 'twenty refusals within 10 s make one line');
      assert.equal(refusals[0].level, WARN);
      assert.equal(refusals[0].reason, 'max_connections');
      assert.equal(logLines(server).length, before + 1, 'nothing else was logged: no line per message or bad frame');
      for (const { client: c } of held) await c.close();

      server.child.kill('SIGTERM');
      assert.equal(await server.exited, 0);
      const messages = logLines(server).map((l) => l.msg);
      assert.ok(messages.includes('signal: shutting down'), messages.join(' | '));
      assert.ok(messages.includes('shutdown: done'), messages.join(' | '));
    } finally {
      await server.kill();
    }
  });

  it('--log-level error leaves out warnings and information', async () => {
    const server = await spawnServer(['--max-connections', '1', '--log-level', 'error']);
    try {
      const held = await TestClient.pubsub(server.ws);
      assert.equal(await upgradeStatus(`${server.ws}/pubsub`), 503);
      await held.client.close();
      server.child.kill('SIGTERM');
      assert.equal(await server.exited, 0);
      assert.deepEqual(logLines(server), []);
    } finally {
      await server.kill();
    }
  });

  it('logs a slow consumer cut', async () => {
    const server = await spawnServer(['--max-backpressure', '131072']);
    try {
      const { client: slow } = await TestClient.pubsub(server.ws);
      await slow.request({ action: 'subscribe', payload: { channel: 'flood' }, id: 1 });
      slow.ws.pause();
      const { client: publisher } = await TestClient.pubsub(server.ws);
      const big = 'x'.repeat(16 * 1024);
      for (let i = 0; i < 2000 && !logLines(server).some((l) => l.msg.startsWith('slow consumer')); i++) {
        publisher.send({ action: 'publish', payload: { channel: 'flood', message: big } });
        if (i % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
      }
      await eventually(() => logLines(server).some((l) => l.msg.startsWith('slow consumer')), 10_000);
      const line = logLines(server).find((l) => l.msg.startsWith('slow consumer'))!;
      assert.equal(line.level, WARN);
      assert.equal(line.limit, 131072);
      assert.ok((line.buffered as number) > 131072, `buffered ${line.buffered}`);
      assert.equal(typeof line.connection, 'string');
      await publisher.close();
    } finally {
      await server.kill();
    }
  });

  it('logs a Redis outage and its end', async () => {
    const redis = await redisProcess();
    const server = await spawnServer(['--redis', redis.url]);
    try {
      await eventually(() => logLines(server).some((l) => l.msg === 'redis connected'), 10_000);
      await redis.kill();
      await eventually(() => logLines(server).some((l) => l.msg.startsWith('redis connection lost')), 10_000);
      const lost = logLines(server).find((l) => l.msg.startsWith('redis connection lost'))!;
      assert.equal(lost.level, WARN);
      assert.equal(lost.outages, 1);
      await redis.start();
      await eventually(() => logLines(server).some((l) => l.msg.startsWith('redis is back')), 10_000);
      // ioredis retries every few hundred ms while Redis is down: its errors come to one line per 10 s.
      const errors = logLines(server).filter((l) => l.msg === 'redis client error');
      assert.ok(errors.length <= 2, `${errors.length} error lines`);
    } finally {
      await server.kill();
      await redis.kill();
    }
  });
});
