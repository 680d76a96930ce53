/**
 * README.md's swarm examples beyond our contract and one machine: --find-max and three agents against
 * `make server`, and --protocol raw against a plain WebSocket echo server on the port the README names.
 * A file of its own so that neither this nor docs-swarm.test.ts comes near the 60 s a test file may take.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { background, doc, docPlaces, mapped, serve, sh } from './helpers/docs.js';

describe('README.md: the swarm examples for other servers and more machines', () => {
  const places = docPlaces();

  it('README: --find-max and three agents against make server', async () => {
    const server = await serve('make server ARGS="--bench"', places);
    try {
      const findMax = doc('README.md', 'make swarm ARGS="--url ws://127.0.0.1:9000 --find-max --clients 1000 --p99-limit 50"');
      const steps = await sh(mapped(findMax.command.replace('--clients 1000', '--clients 50 --max-clients 100 --ramp 0.5 --delay 0.5'), places));
      assert.equal(steps.code, 0, steps.output);
      assert.match(steps.output, /find-max: 50 clients: p99 [\d.]+ ms, errors 0, lost 0, saturated: \w+ -> held/);
      assert.match(steps.output, /the largest client count that held: 100 \(reached --max-clients 100\)/);

      // Three agents from three source addresses, as the README has them in three terminals.
      const agentCommand = doc('README.md', 'make swarm ARGS="agent --coordinator redis://127.0.0.1:6379 --name a1 --source-addresses 127.0.0.2"').command;
      const agents = await Promise.all(
        [2, 3, 4].map((n) => background(mapped(agentCommand.replace('--name a1', `--name a${n - 1}`).replace('127.0.0.2', `127.0.0.${n}`), places), /waiting for a run/)),
      );
      try {
        const run = doc('README.md', 'make swarm ARGS="--agents 3 --coordinator redis://127.0.0.1:6379 --url ws://127.0.0.1:9000 --clients 30000 --ramp 10 --delay 10"');
        const spread = await sh(mapped(run.command.replace('--clients 30000', '--clients 300').replace('--ramp 10', '--ramp 1').replace('--delay 10', '--delay 1'), places));
        assert.equal(spread.code, 0, spread.output);
        assert.match(spread.output, /on agents a\d, a\d, a\d to ws:/);
        assert.match(spread.output, /completed 300\/300 {3}errors 0 {3}peak connected \d+ {3}agents 3\n/);
      } finally {
        for (const agent of agents) {
          await agent.interrupt();
          assert.match(agent.output(), /run \w+ done\n/, agent.output());
        }
      }
    } finally {
      await server.interrupt();
    }
  });

  it('README: --protocol raw against a plain WebSocket echo server', async () => {
    // A plain WebSocket echo server of the reader's own, on port 9100 as the README has it.
    const plain = new WebSocketServer({ port: places.base + 100, host: '127.0.0.1', perMessageDeflate: false });
    plain.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
    await new Promise((resolve) => plain.once('listening', resolve));
    try {
      const raw = doc('README.md', 'make swarm ARGS="--url ws://127.0.0.1:9100 --protocol raw --clients 1000 --ramp 2 --delay 2"');
      const echo = await sh(mapped(raw.command.replace('--clients 1000', '--clients 200').replace('--delay 2', '--delay 1'), places));
      assert.equal(echo.code, 0, echo.output);
      assert.match(echo.output, /completed 200\/200 {3}errors 0/);
      assert.match(echo.output, /\(600 round trips\)/);
    } finally {
      await new Promise((resolve) => plain.close(resolve));
    }
  });
});
