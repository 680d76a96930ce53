/**
 * The open-file limit itself: a server started under `ulimit -n 256` and more clients than it may
 * hold. At the limit uSockets' accept fails with EMFILE and retries at once, forever (clients got a
 * TCP connection but no answer, and a core spun); with --max-connections derived from the limit the
 * surplus is refused with 503 while files remain to answer with.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClient } from './helpers/client.js';
import { cpuSeconds, openFiles, spawnServer } from './helpers/process.js';

describe('the open-file limit', () => {
  it('refuses the clients past it with 503 at once, answers /health, and spins no core', async () => {
    const server = await spawnServer([], { openFiles: 256 });
    try {
      const stats = (await (await fetch(`${server.http}/stats`)).json()) as Record<string, any>;
      assert.equal(stats.max_connections, 256 - 64, 'the limit less the reserve (5%, at least 64)');
      const results = await Promise.allSettled(
        Array.from({ length: 240 }, async () => {
          const started = Date.now();
          try {
            return { client: await TestClient.open(`${server.ws}/echo?rounds=0`), ms: Date.now() - started };
          } catch (err) {
            return { error: (err as Error).message, ms: Date.now() - started };
          }
        }),
      );
      const outcomes = results.map((r) => (r.status === 'fulfilled' ? r.value : { error: String(r.reason), ms: 0 }));
      const open = outcomes.filter((o) => 'client' in o);
      const refused = outcomes.filter((o) => 'error' in o);
      assert.equal(open.length, 192);
      assert.equal(refused.length, 48);
      for (const o of refused) {
        assert.equal((o as { error: string }).error, 'HTTP 503: server full: 192 connections (--max-connections)');
        assert.ok(o.ms < 3000, `refused at once (${o.ms} ms)`);
      }
      assert.equal((await fetch(`${server.http}/health`)).status, 200);
      assert.ok((await openFiles(server.pid)) < 256);
      // No accept loop spinning: over a second of rest the server uses a small share of a core.
      const before = await cpuSeconds(server.pid);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const used = (await cpuSeconds(server.pid)) - before;
      assert.ok(used < 0.2, `server used ${(used * 100).toFixed(0)}% of a core at rest`);
      await Promise.all(open.map((o) => (o as { client: TestClient }).client.close()));
      const after = (await (await fetch(`${server.http}/stats`)).json()) as Record<string, any>;
      assert.equal(after.refused.max_connections, 48);
    } finally {
      await server.kill();
    }
  });
});
