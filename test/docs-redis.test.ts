/**
 * docs/protocol.md's curl example, and docs/debugging.md: the Redis bridge and the Redis Cluster seen from
 * redis-cli, each command run as the document has it and checked against what its comment shows. See
 * test/helpers/docs.ts for what is mapped and why.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClient } from './helpers/client.js';
import { background, doc, docPlaces, health, mapped, redisCli, serve, sh, shown, type Running } from './helpers/docs.js';
import { ephemeralRange, onFreePort } from './helpers/ports.js';
import { eventually } from './helpers/server.js';

describe('docs/protocol.md and docs/debugging.md', () => {
  const places = docPlaces();
  const scratch = (): string => places.scratch;

  /** A server command of the docs, started; once it is healthy, a client on it subscribed to `news`. */
  async function serveWithSubscriber(command: string): Promise<{ server: Running; client: TestClient }> {
    const server = await serve(command, places);
    const { client } = await TestClient.pubsub(`ws://127.0.0.1:${places.base}`);
    await eventually(async () => (await health(places.base)) === 200, 10_000);
    assert.equal((await client.request({ action: 'subscribe', payload: { channel: 'news' }, id: 1 })).event, 'subscribed');
    return { server, client };
  }

  it('docs/protocol.md: the POST /publish example answers as shown', async () => {
    const server = await serve('make server ARGS="--publish-key secret"', places);
    try {
      const { command } = doc('docs/protocol.md', `curl -X POST http://127.0.0.1:9000/publish -H 'Authorization: Bearer secret' -d '{"channel":"news","message":{"x":1}}'`);
      const { code, stdout } = await sh(mapped(command, places));
      assert.equal(code, 0);
      assert.equal(stdout, '{"ok":true}', 'the body the docs show after the command (curl prints its progress on stderr)');
    } finally {
      await server.interrupt();
    }
  });

  it('docs/debugging.md: the Redis bridge seen from redis-cli', async () => {
    const { server, client } = await serveWithSubscriber(doc('docs/debugging.md', 'make server ARGS="--redis redis://127.0.0.1:6379 --expire 60 --publish-key secret"').command);
    try {
      const cli = (command: string) => redisCli(command, places);

      let channels = await cli(`redis-cli PUBSUB CHANNELS '*'`);
      for (let i = 0; i < 50 && !channels.lines.includes('pubsub:broadcast:news'); i++) channels = await cli(`redis-cli PUBSUB CHANNELS '*'`);
      assert.deepEqual(channels.lines, [shown(channels.comment)]);
      const numsub = await cli('redis-cli PUBSUB NUMSUB pubsub:broadcast:news');
      assert.equal(numsub.lines.join(' '), shown(numsub.comment));

      const hello = await cli(`redis-cli PUBLISH pubsub:broadcast:news '{"headline":"hello"}'`);
      assert.deepEqual(hello.lines, [shown(hello.comment)]);
      assert.deepEqual(await client.next(), { event: 'message', channel: 'news', message: { headline: 'hello' } });
      const notJson = await cli(`redis-cli PUBLISH pubsub:broadcast:news 'not json'`);
      assert.deepEqual(notJson.lines, [shown(notJson.comment)]);
      assert.deepEqual(await client.next(), { event: 'message', channel: 'news', message: 'not json' }, 'arrives as the JSON string "not json"');

      // Watching: redis-cli SUBSCRIBE and PSUBSCRIBE run until stopped; they show what is published meanwhile.
      const watchNews = doc('docs/debugging.md', 'redis-cli SUBSCRIBE pubsub:broadcast:news');
      const subscribe = await background(mapped(watchNews.command, places), /^1$/m);
      const watchUsers = doc('docs/debugging.md', `redis-cli PSUBSCRIBE 'pubsub:user:*'`);
      const psubscribe = await background(mapped(watchUsers.command, places), /^1$/m);
      const monitorCommand = doc('docs/debugging.md', 'redis-cli MONITOR | grep -i eval');
      const monitor = await background(`bash -c ${JSON.stringify(mapped(monitorCommand.command, places).replace('grep -i', 'grep --line-buffered -i'))}`, /^/);
      // MONITOR says nothing until a command runs: send one its grep lets through until it shows.
      await eventually(async () => (await sh(`redis-cli -p ${places.redis.port} ECHO eval-ready`), monitor.output().includes('eval-ready')), 5000);
      const curl = doc('docs/debugging.md', `curl -s -X POST -H 'Authorization: Bearer secret' -H 'Content-Type: application/json' -d '{"channel":"news","message":{"headline":"hello"}}' http://127.0.0.1:9000/publish`);
      const posted = await sh(mapped(curl.command, places));
      assert.equal(posted.output, shown(curl.comment));
      // The first script call after Redis starts is an eval with the script's text (as the docs say);
      // the next one names it by its SHA-1, as MONITOR's line in the docs shows.
      assert.equal((await sh(mapped(curl.command, places))).output, shown(curl.comment));
      const john = await cli(`redis-cli PUBLISH pubsub:user:john:chat '"a private word"'`);
      assert.equal(john.lines[0], '1', 'the PSUBSCRIBE above is its one receiver');
      assert.match(john.comment, /^0, or 1 while the PSUBSCRIBE above watches/);
      await eventually(() => subscribe.output().split('\n').join(' ').includes(shown(watchNews.comment)), 5000);
      await eventually(() => psubscribe.output().split('\n').join(' ').includes(shown(watchUsers.comment)), 5000);
      await eventually(() => /"evalsha" "[0-9a-f]{40}" "1" "pubsub:broadcast:news"/.test(monitor.output()), 5000);
      const call = monitor.output().split('\n').find((line) => line.includes('"evalsha"'))!;
      assert.ok(call.includes(shown(monitorCommand.comment).replace('"<sha1>" ', '').replace(/^"evalsha" /, '')), `MONITOR shows ${call}`);
      const sha = /"evalsha" "([0-9a-f]{40})"/.exec(call)![1];
      const exists = doc('docs/debugging.md', 'redis-cli SCRIPT EXISTS <sha1>');
      assert.equal((await sh(mapped(exists.command.replace('<sha1>', sha), places))).output.trim(), shown(exists.comment).split(':')[0]);
      for (const watcher of [subscribe, psubscribe, monitor]) await watcher.interrupt();

      const keys = await cli(`redis-cli KEYS 'pubsub:*'`);
      assert.ok(keys.lines.includes(shown(keys.comment)), keys.lines.join(', '));
      const get = await cli('redis-cli GET pubsub:broadcast:news');
      assert.deepEqual(get.lines, [shown(get.comment)]);
      const ttl = await cli('redis-cli TTL pubsub:broadcast:news');
      assert.ok(Number(ttl.lines[0]) > 0 && Number(ttl.lines[0]) <= 60, `TTL ${ttl.lines[0]}; the docs say ${ttl.comment}`);
      const del = await cli('redis-cli DEL pubsub:broadcast:news');
      assert.deepEqual(del.lines, [shown(del.comment)]);
    } finally {
      await client.close();
      await server.interrupt();
    }
  });

  it('docs/debugging.md: the Redis Cluster section, on the local cluster it shows how to make', async () => {
    // Three nodes on free ports below the ephemeral range; each bus port (+10000) must be free too.
    const [ephemeralLow] = ephemeralRange();
    const loop = doc('docs/debugging.md', `for p in 7000 7001 7002; do redis-server --port $p --cluster-enabled yes --cluster-config-file nodes-$p.conf --save '' --daemonize yes; done`);
    await onFreePort(
      async (first) => {
        places.cluster = [first, first + 1, first + 2];
        await sh(mapped(loop.command, places), { cwd: scratch() });
        for (const port of places.cluster) {
          const deadline = Date.now() + 5000;
          while ((await sh(`redis-cli -p ${port} PING`)).output.trim() !== 'PONG') {
            if (Date.now() > deadline) {
              for (const p of places.cluster) await sh(`redis-cli -p ${p} shutdown nosave`);
              places.cluster = [];
              throw new Error(`EADDRINUSE: a cluster node on ${port} did not come up`);
            }
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
      },
      { span: 3, alsoFree: 10_000 },
    );
    assert.ok(places.cluster[2] + 10_000 < ephemeralLow);
    const create = await sh(mapped(doc('docs/debugging.md', 'redis-cli --cluster create 127.0.0.1:7000 127.0.0.1:7001 127.0.0.1:7002 --cluster-replicas 0 --cluster-yes').command, places));
    assert.equal(create.code, 0, create.output);
    const check = doc('docs/debugging.md', 'redis-cli --cluster check 127.0.0.1:7000');
    assert.match(check.comment, /All nodes agree about slots configuration/);
    await eventually(async () => (await sh(mapped(check.command, places))).output.includes('All nodes agree about slots configuration'), 20_000);

    const readme = await serve(doc('README.md', 'make cluster REDIS= ARGS="--redis-cluster 127.0.0.1:7000"').command, places);
    await eventually(async () => (await health(places.base)) === 200, 10_000);
    await readme.interrupt();

    const { server: cluster, client } = await serveWithSubscriber(doc('docs/debugging.md', 'make cluster WORKERS=2 ARGS="--redis-cluster 127.0.0.1:7000,127.0.0.1:7001 --expire 60" REDIS=').command);
    try {
      const cli = (command: string) => redisCli(command, places);

      const slot = await cli('redis-cli -p 7000 CLUSTER KEYSLOT pubsub:broadcast:news');
      assert.deepEqual(slot.lines, [shown(slot.comment)]);
      const shards = await cli('redis-cli -p 7000 CLUSTER SHARDS');
      const lines = shards.lines;
      const own = lines.findIndex((line, i) => line === '10923' && lines[i + 1] === '16383');
      assert.ok(own >= 0 && lines.slice(own, own + 12).includes(String(places.cluster[2])), 'slots 10923-16383 are on the third node, as the docs say');
      let channels = await cli(`redis-cli -p 7002 PUBSUB SHARDCHANNELS 'pubsub:broadcast:*'`);
      for (let i = 0; i < 50 && channels.lines[0] !== 'pubsub:broadcast:news'; i++) channels = await cli(`redis-cli -p 7002 PUBSUB SHARDCHANNELS 'pubsub:broadcast:*'`);
      assert.deepEqual(channels.lines, [shown(channels.comment)]);
      const numsub = await cli('redis-cli -p 7002 PUBSUB SHARDNUMSUB pubsub:broadcast:news');
      assert.equal(numsub.lines.join(' '), shown(numsub.comment));

      const spublish = await cli(`redis-cli -c -p 7000 SPUBLISH pubsub:broadcast:news '{"x":1}'`);
      assert.deepEqual(spublish.lines, [shown(spublish.comment)], 'one instance has a subscriber of news');
      assert.deepEqual(await client.next(), { event: 'message', channel: 'news', message: { x: 1 } });
      // The cache holds what went through a server: a client's publish, not redis-cli's SPUBLISH.
      // The ack and the publisher's own copy come on different paths (the SPUBLISH's answer, the shard's
      // delivery): either may be first.
      client.send({ action: 'publish', payload: { channel: 'news', message: { x: 2 } }, id: 2 });
      const frames = [await client.next(), await client.next()].sort((a, b) => String(a.event).localeCompare(String(b.event)));
      assert.deepEqual(frames, [{ event: 'message', channel: 'news', message: { x: 2 } }, { event: 'published', channel: 'news', id: 2 }]);
      const get = await cli('redis-cli -c -p 7000 GET pubsub:broadcast:news');
      assert.deepEqual(get.lines, [shown(get.comment).split(' ')[0]]);

      const watch = doc('docs/debugging.md', 'redis-cli -p 7002 SSUBSCRIBE pubsub:broadcast:news');
      const ssubscribe = await background(mapped(watch.command, places), /^1$/m);
      assert.equal((await sh(mapped(`redis-cli -c -p 7000 SPUBLISH pubsub:broadcast:news '{"x":1}'`, places))).stdout.trim(), '2', 'the instance, and the SSUBSCRIBE watching');
      await eventually(() => ssubscribe.output().split('\n').join(' ').includes(shown(watch.comment)), 5000);
      await ssubscribe.interrupt();
      assert.deepEqual(await client.next(), { event: 'message', channel: 'news', message: { x: 1 } });
    } finally {
      await client.close();
      await cluster.interrupt();
    }
  });
});
