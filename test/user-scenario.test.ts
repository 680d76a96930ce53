/**
 * User scenarios (`swarm --scenario FILE`, clients/swarm/scenario-api.ts, docs/scenarios.md): the docs'
 * chat-room example in TypeScript with its CSV data at 10,000 clients over two workers against our
 * server, its named timings and checks in the printed summary, the CSVs and the report; what a
 * scenario throws counted by kind and name without a worker going down; a file that cannot be used
 * refused before the run.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Swarm } from '../clients/swarm/swarm.js';
import { readCsv } from '../clients/swarm/output/csv.js';
import { reportSections } from '../clients/swarm/output/report.js';
import { runScript, spawnServer } from './helpers/process.js';
import { startServer } from './helpers/server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SWARM = join(ROOT, 'dist/clients/cli.js');
const CHAT_ROOM = join(ROOT, 'examples/scenarios/chat-room.ts');
const ROOMS = join(ROOT, 'examples/scenarios/rooms.csv');

describe('user scenarios', () => {
  it('the chat-room example: 10,000 clients over two workers, its timings and checks in the summary, the CSVs and the report', async () => {
    const server = await spawnServer([]);
    const out = mkdtempSync(join(tmpdir(), 'user-scenario-'));
    try {
      const run = await runScript(SWARM, ['--url', server.ws, '--scenario', CHAT_ROOM, '--data', ROOMS, '--clients', '10000', '--workers', '2', '--ramp', '4', '--rounds', '2', '--out', out, '--name', 'chat'], 40_000);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /^completed 10000\/10000 {3}errors 0/m);
      assert.match(run.stdout, /^time {5}publish: p50 [\d.]+ {2}p90 [\d.]+ {2}p99 [\d.]+ {2}max [\d.]+ ms {3}\(20000\)$/m);
      assert.match(run.stdout, /^time {5}roundtrip: .* \(20000\)$/m);
      assert.match(run.stdout, /^time {5}subscribe: .* \(10000\)$/m);
      assert.match(run.stdout, /^checks {3}20000\/20000 passed \(100\.00%\)$/m);

      const metrics = readCsv(join(out, 'chat-metrics.csv'));
      const byName = Object.fromEntries(metrics.map((r) => [r.name, r]));
      assert.deepEqual(metrics.map((r) => `${r.kind} ${r.name} ${r.count}`).sort(), [
        'check closed cleanly 10000', 'check welcome names the connection 10000', 'timing publish 20000', 'timing roundtrip 20000', 'timing subscribe 10000',
      ]);
      assert.ok(Number(byName.roundtrip.p99_ms) >= Number(byName.roundtrip.p50_ms) && Number(byName.roundtrip.p50_ms) > 0);
      assert.equal(byName['closed cleanly'].failed, '0');
      const [summary] = readCsv(join(out, 'chat-summary.csv'));
      assert.deepEqual([summary.scenario, summary.completed, summary.checks_passed, summary.checks_failed, summary.timings], ['chat-room', '10000', '20000', '0', '3']);
      const perSecond = readCsv(join(out, 'chat-timings.csv'));
      assert.equal(perSecond.filter((r) => r.name === 'publish').reduce((sum, r) => sum + Number(r.count), 0), 20000, 'the seconds add up to the run');
      assert.ok(readCsv(join(out, 'chat-timeline.csv')).at(-1)!.checks_passed === '20000');

      const section = reportSections(out).find((s) => s.id === 'scenario');
      assert.ok(section, 'the report has the scenario section');
      assert.deepEqual(section.charts[0].datasets.map((d) => d.label).sort(), ['publish', 'roundtrip', 'subscribe']);
      assert.deepEqual(section.table?.slice(1).map((row) => row[1]).sort(), ['closed cleanly', 'publish', 'roundtrip', 'subscribe', 'welcome names the connection']);
    } finally {
      await server.kill();
    }
  });

  it('counts what a scenario throws by kind and by name, a stray rejection too, and the other clients complete', async () => {
    const server = await spawnServer([]);
    const dir = mkdtempSync(join(tmpdir(), 'user-scenario-'));
    const scenario = join(dir, 'faulty.mjs');
    writeFileSync(scenario, `
      export default async function faulty(ctx) {
        const socket = await ctx.connect();
        ctx.check(ctx.data.name === ['ada', 'grace, hopper', 'alan'][ctx.index % 3], 'its own row');
        switch (ctx.index % 5) {
          case 0: ctx.data.missing.field; break;                                   // TypeError
          case 1: socket.send({ action: 'ping', id: 1 }); await socket.expect({ event: 'subscribed' }); break;
          case 2: await socket.publish('bad channel!', 1); break;                  // the server's error
          case 3: Promise.reject(new RangeError('nobody awaits this')); break;     // stray: the client completes
          case 4: ctx.check(false, 'never passes'); break;
        }
        await socket.close();
      }`);
    const data = join(dir, 'users.csv');
    writeFileSync(data, 'name,role\r\nada,admin\r\n"grace, hopper",user\r\nalan,user\r\n');
    try {
      const summary = await new Swarm({ url: server.ws, scenario, data, clients: 50, workers: 2, ramp: 0.5 }).run();
      assert.equal(summary.counters.completed, 20);
      assert.deepEqual(Object.fromEntries(Object.entries(summary.counters.errors).filter(([, n]) => n > 0)), { server_error: 10, expectation: 10, script: 10 });
      assert.deepEqual(summary.thrown, { TypeError: 10, RangeError: 10 });
      assert.deepEqual(summary.checks, { 'its own row': { passed: 50, failed: 0 }, 'never passes': { passed: 0, failed: 10 } });
    } finally {
      await server.kill();
    }
  });

  it('the contract helpers against a server with an rpc receiver: subscribe, publish, message, rpc, request, unsubscribe', async () => {
    const server = await startServer({ hooks: { rpc: { add: (_conn, params) => (params as number[]).reduce((a, b) => a + b, 0) } } });
    const dir = mkdtempSync(join(tmpdir(), 'user-scenario-'));
    const scenario = join(dir, 'helpers.mjs');
    writeFileSync(scenario, `
      export default async function helpers(ctx) {
        const a = await ctx.connect();
        const b = await ctx.connect();
        const channel = 'room-' + ctx.index;
        await a.subscribe(channel);
        await b.subscribe(channel);
        await b.publish(channel, { hello: ctx.index });
        const got = await a.message();
        ctx.check(got.channel === channel && got.message.hello === ctx.index, 'a got the message');
        ctx.check(await a.rpc('add', [ctx.index, 1]) === ctx.index + 1, 'rpc result');
        const own = await b.message();
        ctx.check(own.message.hello === ctx.index, 'b got its own message');
        ctx.check((await b.request('ping')).event === 'pong', 'request ping');
        try {
          await a.rpc('nope');
          ctx.check(false, 'unknown method refused');
        } catch (err) {
          ctx.check(/server_error|unknown_method/.test(err.kind + ' ' + err.message), 'unknown method refused');
        }
        await a.unsubscribe(channel);
        await b.publish(channel, 'after');
        ctx.check((await b.message()).message === 'after', 'b still subscribed');
        await a.close();
        await b.close();
      }`);
    try {
      const summary = await new Swarm({ url: server.ws, scenario, clients: 20, workers: 1, ramp: 0.5 }).run();
      assert.equal(summary.counters.completed, 20, JSON.stringify(summary.counters.errors));
      assert.deepEqual(Object.values(summary.checks).map((c) => c.failed), [0, 0, 0, 0, 0, 0]);
      assert.deepEqual(Object.values(summary.checks).map((c) => c.passed), [20, 20, 20, 20, 20, 20]);
    } finally {
      await server.close();
    }
  });

  it('refuses a scenario or data file it cannot use before any client connects (exit 2, saying why)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'user-scenario-'));
    const noFunction = join(dir, 'no-function.mjs');
    writeFileSync(noFunction, 'export const rounds = 3;\n');
    const broken = join(dir, 'broken.ts');
    writeFileSync(broken, 'export default async function (ctx: { index: number } {\n');
    const flow = join(dir, 'flow.mjs');
    writeFileSync(flow, 'export async function scenario(ctx) {}\n');
    const badCsv = join(dir, 'bad.csv');
    writeFileSync(badCsv, 'name,room\n"ada,1\n');
    const headerOnly = join(dir, 'header.csv');
    writeFileSync(headerOnly, 'name,room\n');
    const url = ['--url', 'ws://127.0.0.1:9'];
    const cases: [string[], RegExp][] = [
      [['--scenario', join(dir, 'missing.mjs')], /--scenario .*missing\.mjs: no such file/],
      [['--scenario', noFunction], /must export the function each client runs, as its default export or as `scenario` \(its exports: rounds\)/],
      [['--scenario', broken], /--scenario .*broken\.ts: cannot load it/],
      [['--scenario', flow, '--data', badCsv], /--data .*bad\.csv: not CSV with a header line/],
      [['--scenario', flow, '--data', headerOnly], /--data .*header\.csv: no rows under its header line/],
      [['--scenario', 'echo', '--data', headerOnly], /--data is for a user scenario/],
    ];
    for (const [args, message] of cases) {
      const run = await runScript(SWARM, [...url, ...args], 20_000);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message);
    }
  });
});
