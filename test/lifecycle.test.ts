/** The library API and graceful shutdown of the real CLI process (the engine: engine.test.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createServer } from '../server/index.js';
import { spawnListening } from '../server/listening.js';
import { TestClient } from './helpers/client.js';

const CLI = fileURLToPath(new URL('../server/cli.js', import.meta.url));

describe('library API', () => {
  it('serves with three lines and closes', async () => {
    const server = createServer({ port: 0, host: '127.0.0.1' });
    const { port } = await server.listen();
    const { client, welcome } = await TestClient.pubsub(`ws://127.0.0.1:${port}`);
    assert.equal(welcome.event, 'welcome');
    const closing = server.close();
    assert.deepEqual(await client.next(), { event: 'goodbye', reason: 'shutdown' });
    assert.equal((await client.closed).code, 1001);
    await closing;
  });

  it('refuses a port another server already holds instead of sharing it', async () => {
    const first = createServer({ port: 0, host: '127.0.0.1' });
    const { port } = await first.listen();
    const second = createServer({ port, host: '127.0.0.1' });
    await assert.rejects(second.listen(), new RegExp(`cannot listen on 127.0.0.1:${port} \\(--host, --port\\)`));
    await first.close();
  });

  it('throws on bad options, naming the flag', () => {
    assert.throws(() => createServer({ maxSubscriptions: -1 }), /^RangeError: maxSubscriptions must be an integer from 1/);
  });
});

describe('graceful shutdown', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`on ${signal}: stops accepting, says goodbye to everyone, closes 1001, exits 0`, async () => {
      const { child, port, output, exited } = await spawnListening([process.execPath, CLI, '--host', '127.0.0.1', '--port', '0', '--shutdown-timeout', '2000', '--bench']);
      assert.match(output(), /^engine: uWebSockets\.js .*native/m);
      const base = `ws://127.0.0.1:${port}`;
      const pubsubClients = await Promise.all(Array.from({ length: 5 }, () => TestClient.pubsub(base)));
      const echo = await TestClient.open(`${base}/echo?rounds=0`);
      await echo.next();
      const started = Date.now();
      child.kill(signal);
      for (const { client } of pubsubClients) {
        assert.deepEqual(await client.next(), { event: 'goodbye', reason: 'shutdown' });
        assert.equal((await client.closed).code, 1001);
      }
      assert.deepEqual(await echo.next(), { event: 'goodbye', reason: 'shutdown' });
      assert.equal((await echo.closed).code, 1001);
      const code = await exited;
      assert.equal(code, 0);
      assert.ok(Date.now() - started < 3000, 'exited within the shutdown bound');
      await assert.rejects(TestClient.open(`${base}/pubsub`));
    });
  }
});
