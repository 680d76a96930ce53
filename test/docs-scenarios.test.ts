/**
 * docs/scenarios.md's commands: both example scenarios (examples/scenarios/) run against `make server`
 * as the page shows them, in short form (fewer clients), and print what it says they print; the
 * thresholds example decides its exit code. See
 * test/helpers/docs.ts for what is mapped and why.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { doc, docPlaces, mapped, serve, sh } from './helpers/docs.js';

const PAGE = 'docs/scenarios.md';

describe('docs/scenarios.md: the example scenarios', () => {
  const places = docPlaces();

  it('the chat room (TypeScript, with its data) and the ping check (JavaScript) against make server', async () => {
    const server = await serve(doc(PAGE, 'make server').command, places);
    try {
      const chat = doc(PAGE, 'make swarm ARGS="--url ws://127.0.0.1:9000 --scenario examples/scenarios/chat-room.ts --data examples/scenarios/rooms.csv --clients 10000 --ramp 5 --out results"');
      const chatRun = await sh(mapped(chat.command.replace('--clients 10000', '--clients 600').replace('--ramp 5', '--ramp 1').replace('--out results', `--out ${places.scratch}`), places));
      assert.equal(chatRun.code, 0, chatRun.output);
      assert.match(chatRun.output, /completed 600\/600 {3}errors 0/);
      for (const [name, count] of [['publish', 1800], ['roundtrip', 1800], ['subscribe', 600]] as const) {
        assert.match(chatRun.output, new RegExp(`^time {5}${name}: p50 [\\d.]+ {2}p90 [\\d.]+ {2}p99 [\\d.]+ {2}max [\\d.]+ ms {3}\\(${count}\\)$`, 'm'));
      }
      assert.match(chatRun.output, /^checks {3}1200\/1200 passed \(100\.00%\)$/m);
      assert.match(chatRun.output, /-metrics\.csv, .*-timings\.csv/);

      const ping = doc(PAGE, 'make swarm ARGS="--url ws://127.0.0.1:9000 --scenario examples/scenarios/ping-check.mjs --clients 2000 --ramp 2"');
      const pingRun = await sh(mapped(ping.command.replace('--clients 2000', '--clients 300').replace('--ramp 2', '--ramp 1'), places));
      assert.equal(pingRun.code, 0, pingRun.output);
      assert.match(pingRun.output, /completed 300\/300 {3}errors 0/);
      assert.match(pingRun.output, /^time {5}ping: .* \(900\)$/m);
      // 'pong under 50 ms' may fail on a busy host without failing a client; 'answered with pong' may not.
      assert.match(pingRun.output, /^checks {3}\d+\/1800 passed/m);
      assert.doesNotMatch(pingRun.output, /failed: .*answered with pong/);

      const closed = doc(PAGE, `make swarm ARGS="--url ws://127.0.0.1:9000 --scenario examples/scenarios/ping-check.mjs --stage '10s:0->500' --stage 20s:500 --stage '5s:500->0'"`);
      const closedRun = await sh(mapped(closed.command.replace("'10s:0->500'", "'1s:0->50'").replace('20s:500', '1s:50').replace("'5s:500->0'", "'1s:50->0'"), places));
      assert.equal(closedRun.code, 0, closedRun.output);
      assert.match(closedRun.output, /50 virtual users \(stages 1s:0->50 1s:50->50 1s:50->0\)/);
      assert.match(closedRun.output, /^completed \d+ runs of the scenario {3}errors 0/m);
      const open = doc(PAGE, `make swarm ARGS="--url ws://127.0.0.1:9000 --scenario examples/scenarios/ping-check.mjs --stage '10s:0->200/s' --stage 20s:200/s"`);
      const openRun = await sh(mapped(open.command.replace("'10s:0->200/s'", "'1s:0->100/s'").replace('20s:200/s', '1s:100/s'), places));
      assert.equal(openRun.code, 0, openRun.output);
      assert.match(openRun.output, /^completed 150\/150 {3}errors 0/m);

      const gate = doc(PAGE, `make swarm ARGS="--url ws://127.0.0.1:9000 --scenario examples/scenarios/ping-check.mjs --clients 2000 --ramp 2 --threshold 'ping_p99<50' --threshold 'checks{answered with pong}>=1' --threshold errors==0 --summary-json results/ping.json"`);
      const json = join(places.scratch, 'ping.json');
      const gateRun = await sh(mapped(gate.command.replace('--clients 2000', '--clients 200').replace('--ramp 2', '--ramp 1').replace('results/ping.json', json), places));
      // ping_p99<50 is this machine's to keep or not: the exit code follows what the thresholds say.
      const lines = gateRun.output.match(/^threshold (PASS|FAIL) {2}.*$/gm) ?? [];
      assert.equal(lines.length, 3, gateRun.output);
      assert.match(gateRun.output, /^threshold PASS {2}checks\{answered with pong\}>=1 \(measured 1\)$/m);
      assert.match(gateRun.output, /^threshold PASS {2}errors==0 \(measured 0\)$/m);
      assert.equal(gateRun.code, lines.every((line) => line.includes(' PASS ')) ? 0 : 1, gateRun.output);
      const written = JSON.parse(readFileSync(json, 'utf8'));
      assert.deepEqual(written.thresholds.map((t: { threshold: string }) => t.threshold), ['ping_p99<50', 'checks{answered with pong}>=1', 'errors==0']);
    } finally {
      await server.interrupt();
    }
  });
});
