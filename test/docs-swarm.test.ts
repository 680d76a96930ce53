/**
 * README.md's swarm examples, against `make server` and, for the three-URL one, three servers on
 * consecutive ports as its text says. See test/helpers/docs.ts for what is mapped and why.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { doc, docPlaces, mapped, serve, sh } from './helpers/docs.js';

describe('README.md: the swarm examples', () => {
  const places = docPlaces();

  it('README: the swarm examples, against make server and make cluster', async () => {
    const server = await serve('make server ARGS="--bench"', places);
    try {
      const bare = await sh(mapped(doc('README.md', 'make swarm').command, places));
      assert.equal(bare.code, 0, bare.output);
      assert.match(bare.output, /1000 clients are connected!/);
      assert.match(bare.output, /completed 1000\/1000 {3}errors 0/);

      const c10k = doc('README.md', 'make swarm ARGS="--url ws://127.0.0.1:9000 --clients 10000 --ramp 2 --delay 15"');
      const echo = await sh(mapped(c10k.command.replace('--clients 10000', '--clients 500').replace('--delay 15', '--delay 1'), places));
      assert.equal(echo.code, 0, echo.output);
      assert.match(echo.output, /completed 500\/500 {3}errors 0/);
      assert.match(echo.output, /saturated: /);

      const fanout = doc('README.md', 'make swarm ARGS="--url ws://127.0.0.1:9000 --scenario broadcast --clients 1000 --ramp 2 --rate 200 --duration 10"');
      const broadcast = await sh(mapped(fanout.command.replace('--clients 1000', '--clients 200').replace('--duration 10', '--duration 2'), places));
      assert.equal(broadcast.code, 0, broadcast.output);
      assert.match(broadcast.output, /deliveries (\d+)\/\1 \(lost 0\)/);

      const help = await sh(mapped(doc('README.md', 'make swarm ARGS="--help"').command, places));
      assert.equal(help.code, 0);
      assert.match(help.output, /--scenario/);
    } finally {
      await server.interrupt();
    }

    // The three-URL example needs three servers on consecutive ports, as its text says.
    const three = await serve('make cluster WORKERS=3 ARGS="--worker-ports consecutive --bench"', places);
    try {
      const urls = doc('README.md', 'make swarm ARGS="--url ws://127.0.0.1:9000,ws://127.0.0.1:9001,ws://127.0.0.1:9002 --scenario broadcast --clients 3 --publishers 1 --rate 20000 --duration 10 --warmup 3 --ramp 0"');
      const spread = await sh(mapped(urls.command.replace('--rate 20000', '--rate 2000').replace('--duration 10', '--duration 2').replace('--warmup 3', '--warmup 1'), places));
      assert.equal(spread.code, 0, spread.output);
      assert.match(spread.output, /deliveries (\d+)\/\1 \(lost 0\)/);
    } finally {
      await three.interrupt();
    }
  });
});
