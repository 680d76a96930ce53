/**
 * Stages (clients/swarm/stages.ts, `--stage`, `--stages FILE`): the schedule's arithmetic; then the swarm
 * command against our server in both models, its timeline and metrics CSVs marking the stages: virtual
 * users that run their scenario again while the target counts them (never more connected than the
 * target), and arrivals at a rate that ramps; what is refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { arrivalAt, parseStages, scheduledClients, stagesOfDocument, targetAt } from '../clients/swarm/stages.js';
import { readCsv } from '../clients/swarm/output/csv.js';
import { reportSections } from '../clients/swarm/output/report.js';
import { runScript, spawnServer, type ServerChild } from './helpers/process.js';

const SWARM = fileURLToPath(new URL('../clients/cli.js', import.meta.url));

describe('stages: the schedule', () => {
  it('reads both models, goes on from the stage before, and refuses what does not describe a schedule', () => {
    const closed = parseStages(['2s:0->40', '1m:40', '500ms:40->0']);
    assert.deepEqual(closed, { model: 'concurrency', durationS: 62.5, stages: [{ durationS: 2, from: 0, to: 40 }, { durationS: 60, from: 40, to: 40 }, { durationS: 0.5, from: 40, to: 0 }] });
    assert.equal(scheduledClients(closed), 40);
    assert.equal(targetAt(closed, 1), 20);
    assert.equal(targetAt(closed, 30), 40);
    assert.equal(targetAt(closed, 62.25), 20);
    assert.equal(targetAt(closed, 63), 0);
    const open = parseStages(['10s:0->200/s', '5s:200/s']);
    assert.equal(open.model, 'arrivals');
    assert.equal(scheduledClients(open), 1000 + 1000);
    assert.equal(arrivalAt(open, 0), 0);
    assert.ok(Math.abs(arrivalAt(open, 250) - 5) < 1e-9, 'half the ramp: a quarter of its arrivals');
    assert.ok(Math.abs(arrivalAt(open, 1000) - 10) < 1e-9);
    assert.ok(Math.abs(arrivalAt(open, 1500) - 12.5) < 1e-9, 'then one every 5 ms');
    for (const [stages, message] of [
      [['30s:0->100', '30s:100/s'], /every stage of a run is of one model/],
      [['30 s:100'], /is not <duration>:<from>-><to>/],
      [['0s:100'], /lasts more than 0 s/],
      [['10s:0->0'], /start no client/],
      [['10s:0.5->3'], /whole numbers/],
      [['2m:0->20000/s'], /more than 1000000/],
    ] as const) assert.throws(() => parseStages(stages), message, stages.join(' '));
  });

  it('reads a JSON or YAML document of stages', () => {
    assert.deepEqual(stagesOfDocument([{ duration: '30s', target: 5000 }, { duration: '1m', target: 5000 }, { duration: '10s', from: 5000, target: 0 }]), ['30s:5000', '1m:5000', '10s:5000->0']);
    assert.deepEqual(stagesOfDocument({ stages: [{ duration: '1m', rate: 200 }] }), ['1m:200/s']);
    assert.throws(() => stagesOfDocument({ stages: [] }), /must hold a list of stages/);
    assert.throws(() => stagesOfDocument([{ duration: 30, target: 5 }]), /stage 1 must be/);
    assert.throws(() => stagesOfDocument([{ duration: '30s', target: 5, rate: 2 }]), /stage 1 must be/);
  });
});

describe('stages: runs against our server', () => {
  let server: ServerChild;
  let dir: string;
  let flow: string;
  before(async () => {
    server = await spawnServer([]);
    dir = mkdtempSync(join(tmpdir(), 'stages-'));
    flow = join(dir, 'flow.mjs');
    // A short visit: connect, a ping, a pause, close; the iteration it is, checked to be a number.
    writeFileSync(flow, `export default async function (ctx) {
      const socket = await ctx.connect();
      await ctx.time('ping', () => socket.request('ping'));
      ctx.check(Number.isInteger(ctx.iteration) && ctx.iteration >= 0, 'iteration counted');
      if (ctx.iteration > 0) ctx.check(true, 'ran again');
      await ctx.sleep(300);
      await socket.close();
    }\n`);
  });
  after(() => server.kill());

  it('concurrency: virtual users run again while counted, never more connected than the target, the stages in the CSVs and the report', async () => {
    const run = await runScript(SWARM, ['--url', server.ws, '--scenario', flow, '--stage', '2s:0->40', '--stage', '2s:40', '--stage', '1s:40->0', '--workers', '2', '--out', dir, '--name', 'closed'], 40_000);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /== server: .*flow\.mjs, 40 virtual users \(stages 2s:0->40 2s:40->40 1s:40->0\)/);
    const runs = Number(/^completed (\d+) runs of the scenario {3}errors 0/m.exec(run.stdout)?.[1]);
    // 40 users for about 3 s (half the ramps) at about 0.3 s a run: well over one run each.
    assert.ok(runs > 80 && runs < 40 * 5 / 0.3, `runs: ${runs}`);
    const [summary] = readCsv(join(dir, 'closed-summary.csv'));
    assert.ok(Number(summary.peak_connected) <= 40 && Number(summary.peak_connected) >= 30, `peak ${summary.peak_connected}`);
    assert.match(run.stdout, /^checks {3}\d+\/\d+ passed \(100\.00%\)$/m);
    assert.doesNotMatch(run.stdout, /ran again 0/);
    const timeline = readCsv(join(dir, 'closed-timeline.csv'));
    assert.deepEqual([...new Set(timeline.map((r) => r.stage).filter(Boolean))], ['1', '2', '3']);
    for (const row of timeline) assert.ok(Number(row.connected) <= 40, `second ${row.second}: ${row.connected} connected`);
    assert.deepEqual(timeline.filter((r) => r.stage === '2').map((r) => r.stage_target), timeline.filter((r) => r.stage === '2').map(() => '40'));
    const section = reportSections(dir).find((s) => s.id === 'scenario')!;
    assert.ok(section.charts.some((c) => c.id === 'scenario-stages' && c.title.includes('2s:0->40, 2s:40->40, 1s:40->0')), 'the report draws the stages');
  });

  it('arrivals: new clients at a ramping rate, each once, from a YAML file', async () => {
    const stages = join(dir, 'stages.yaml');
    writeFileSync(stages, 'stages:\n  - { duration: 2s, rate: 100 }\n  - duration: 1s\n    rate: 100\n');
    const run = await runScript(SWARM, ['--url', server.ws, '--scenario', flow, '--stages', stages, '--out', dir, '--name', 'open'], 40_000);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    // 0 -> 100 a second over 2 s: 100 arrivals; then 100 more in the last second.
    assert.match(run.stdout, /^completed 200\/200 {3}errors 0/m);
    const timeline = readCsv(join(dir, 'open-timeline.csv'));
    const targets = timeline.filter((r) => r.stage === '1').map((r) => Number(r.stage_target));
    assert.ok(targets.length >= 1 && targets.every((t, i) => i === 0 || t > targets[i - 1]), `the rate ramps: ${targets.join(' ')}`);
  });

  it('refuses stages that cannot run (exit 2, saying why)', async () => {
    const yaml = join(dir, 'bad.yaml');
    writeFileSync(yaml, '- { duration: 2s }\n');
    for (const [args, message] of [
      [['--scenario', 'crowd', '--stage', '10s:0->100'], /--stage runs the echo scenario and user scenarios; crowd has a schedule of its own/],
      [['--scenario', flow, '--stage', '10s:0->100', '--stage', '10s:5/s'], /--stage must describe a schedule: .*every stage of a run is of one model/],
      [['--scenario', flow, '--stage', 'soon:100'], /--stage must be <duration>:<from>-><to>/],
      [['--scenario', flow, '--stages', yaml], /--stages .*bad\.yaml: stage 1 must be/],
      [['--scenario', flow, '--stages', yaml, '--stage', '1s:1'], /--stages and --stage exclude each other/],
    ] as const) {
      const run = await runScript(SWARM, ['--url', server.ws, ...args], 20_000);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
      assert.match(run.stderr, message);
    }
  });
});
