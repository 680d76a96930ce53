/**
 * README.md's commands, run as written (short forms where the docs test helper says): the server, the
 * cluster and the baseline in their forms, --help and bench-micro (the fuzz run and the long benchmarks'
 * flags are in docs-readme-benches.test.ts). See test/helpers/docs.ts for what is mapped and why.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FLAGS } from '../server/options.js';
import { TestClient } from './helpers/client.js';
import { doc, docPlaces, health, serve, sh } from './helpers/docs.js';
import { instanceOf } from './helpers/process.js';
import { eventually } from './helpers/server.js';

describe('README.md: the server, the cluster, the baseline, bench-micro', () => {
  const places = docPlaces();

  it('README: make server and its forms start, answer, and stop cleanly on Ctrl-C', async () => {
    const plain = await serve(doc('README.md', 'make server').command, places);
    assert.match(plain.output(), /^engine: uWebSockets\.js \S+ \(native uws_linux_x64_\d+\.node\)$/m);
    assert.match(plain.output(), new RegExp(`^listening: ws://0\\.0\\.0\\.0:${places.base}/pubsub .*from this machine ws://127\\.0\\.0\\.1:${places.base}\\)$`, 'm'));
    assert.equal(await health(places.base), 200);
    await plain.interrupt();
    assert.match(plain.output(), /"msg":"shutdown: done"/, 'it shut down gracefully and logged it');

    const cached = await serve(doc('README.md', 'make server PORT=9100 ARGS="--expire 30 --publish-key secret"').command, places);
    const port = places.base + 100;
    const published = await fetch(`http://127.0.0.1:${port}/publish`, { method: 'POST', headers: { authorization: 'Bearer secret' }, body: '{"channel":"news","message":"hi"}' });
    assert.equal(published.status, 202);
    const { client } = await TestClient.pubsub(`ws://127.0.0.1:${port}`);
    assert.equal((await client.request({ action: 'subscribe', payload: { channel: 'news' }, id: 1 })).event, 'subscribed');
    assert.deepEqual(await client.next(), { event: 'message', channel: 'news', message: 'hi', cached: true });
    await client.close();
    await cached.interrupt();

    const bridged = await serve(doc('README.md', 'make server ARGS="--redis redis://127.0.0.1:6379 --prefix app --expire 60"').command, places);
    assert.match(bridged.output(), new RegExp(`^broker: redis redis://127\\.0\\.0\\.1:${places.redis.port} prefix app$`, 'm'));
    await eventually(async () => (await health(places.base)) === 200, 10_000);
    await bridged.interrupt();

    const admin = await serve(doc('README.md', 'make server ARGS="--admin-port 9090"').command, places);
    assert.match(admin.output(), new RegExp(`^admin: http://127\\.0\\.0\\.1:${places.base + 90}/stats`, 'm'));
    assert.equal((await fetch(`http://127.0.0.1:${places.base + 90}/stats`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${places.base}/stats`)).status, 404, 'not on the public port');
    await admin.interrupt();
  });

  it('README: make cluster in its forms, make baseline', async () => {
    const four = await serve(doc('README.md', 'make cluster WORKERS=4').command, places);
    assert.match(four.output(), new RegExp(`^listening: ws://127\\.0\\.0\\.1:${places.base}/pubsub .*\\(4 workers\\)`, 'm'));
    const instances = new Set<string>();
    for (let i = 0; i < 24 && instances.size < 4; i++) instances.add(await instanceOf(places.base));
    assert.ok(instances.size >= 2, `the connections were spread over the workers (${instances.size} instances)`);
    await four.interrupt();
    assert.match(four.output(), /^stopped$/m);

    const consecutive = await serve(doc('README.md', 'make cluster ARGS="--worker-ports consecutive"').command, places);
    // Each worker says 503 until its Redis connection is up, a moment after the listening line.
    await eventually(async () => (await health(places.base)) === 200 && (await health(places.base + 1)) === 200, 10_000);
    await consecutive.interrupt();

    const baseline = await serve(doc('README.md', 'make baseline PORT=9001 ARGS="--serial"').command, places);
    assert.match(baseline.output(), /^engine: ws \S+ .*, serial slow requests$/m);
    assert.equal(await health(places.base + 1), 200);
    await baseline.interrupt();
  });

  it('README: --help lists every option, and make bench-micro prints its table', async () => {
    const help = await sh(doc('README.md', 'node dist/server/cli.js --help').command);
    assert.equal(help.code, 0);
    for (const flag of Object.values(FLAGS)) assert.ok(help.output.includes(flag), `--help lists ${flag}`);

    const micro = await sh(doc('README.md', 'make bench-micro').command);
    assert.equal(micro.code, 0, micro.output);
    assert.match(micro.output, /bench-micro: 9\/10 verify HS256 token \(jose\): \d+ ops\/s/);
    assert.match(micro.output, /bench-micro: 10\/10 call a hook \(callHook, empty sync hook\): \d+ ops\/s/);
    assert.match(micro.output, /'parse publish'\s+│\s+\d+/);
  });
});
