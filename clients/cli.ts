#!/usr/bin/env node
/**
 * `node dist/clients/cli.js [flags]` (`make swarm ARGS="..."`): the swarm against any server that speaks
 * the contract. Prints progress to stderr, the summary to stdout, and with `--out` writes CSVs. Exits 0 when
 * every client completed, 1 when some did not, 2 on a bad flag or a scenario file it cannot use, 130 when
 * Ctrl-C stopped it (after the summary and the CSVs of what was measured, marked interrupted). With
 * `--threshold`s, they decide instead: 1 when one failed (at the end, or early with --abort-on-fail), else 0.
 */
import { commandLine, numeric, usageError } from '../server/command-line.js';
import { Swarm } from './swarm/swarm.js';
import { catchInterrupts, interruptible } from './host/interrupt.js';
import { SWARM_OPTION_SPEC, scenarioLabel, validateSwarmOptions } from './swarm/options.js';
import { ScenarioFileError } from './swarm/user/load.js';
import { flagOf, optionsFromArgs, withOptions } from '../server/option-spec.js';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { runsVirtualUsers, stagesOfDocument } from './swarm/stages.js';
import { attachDashboard, type Dashboard } from './swarm/output/dashboard.js';
import { totalErrors } from './swarm/metrics.js';
import { join } from 'node:path';
import { findMax } from './swarm/find-max.js';
import { attachCsv, hostColumns, stamp, summaryRow, writeCsv, type Row } from './swarm/output/csv.js';
import { attachProgress } from './swarm/output/progress.js';
import { summaryLines } from './swarm/output/summary.js';

if (process.argv[2] === 'agent') {
  const { runAgent } = await import('./agents/agent-cli.js');
  await runAgent(process.argv.slice(3));
  process.exit(0);
}

const args = await withOptions(commandLine('swarm', '$0 [flags]\n\nOpens many WebSocket clients against a server that speaks the pub/sub contract and measures it.\nExample: $0 --url ws://127.0.0.1:9000 --clients 10000 --ramp 2 --delay 5'), SWARM_OPTION_SPEC)
  .option('out', { type: 'string', describe: 'directory for CSVs (<name>-timeline.csv, <name>-summary.csv, history.csv); none without it' })
  .option('name', { type: 'string', describe: 'file name prefix of the CSVs (default swarm-<scenario>-<stamp>)' })
  .option('label', { type: 'string', default: 'server', describe: 'what the summary calls the server under test' })
  .option('stages', { type: 'string', describe: 'a JSON or YAML file of stages instead of --stage: [{ duration: "30s", target: 5000 }, ...] (clients at once) or [{ duration: "1m", rate: 200 }, ...] (new clients per second), each with an optional from' })
  .option('dashboard', { type: 'string', describe: 'serve a live page of the run on 127.0.0.1 at this port (none given: a free one, printed), its charts updated each second, and the run\'s static report in its place at the end (also <name>-report.html with --out)' })
  .option('summary-json', { type: 'string', describe: 'write every figure of the run as JSON to this file (the summary, its CSV row, each threshold judged), for pipelines' })
  .option('find-max', { type: 'boolean', default: false, describe: 'run again and again with --step-factor times more clients, from --clients, until p99 passes --p99-limit, a client fails or a copy is lost; print the largest count that held and the saturated side of each step' })
  .option('p99-limit', { coerce: numeric, requiresArg: true, default: 50, describe: 'ms: the p99 (echo and broadcast round trip; fanout with --publishers) a --find-max step must stay within' })
  .option('step-factor', { coerce: numeric, requiresArg: true, default: 2, describe: 'clients of a --find-max step over those of the one before (above 1)' })
  .option('max-clients', { coerce: numeric, requiresArg: true, default: 100_000, describe: 'no --find-max step goes beyond this many clients' })
  .check((a) => {
    if (a.dashboard !== undefined && !/^\d{0,5}$/.test(String(a.dashboard))) throw new Error(`--dashboard takes a port, 0 to 65535, or nothing for a free one (got ${JSON.stringify(a.dashboard)})`);
    if (a.dashboard !== undefined && Number(a.dashboard) > 65_535) throw new Error(`--dashboard takes a port, 0 to 65535, or nothing for a free one (got ${String(a.dashboard)})`);
    if (!a.findMax) return true;
    // find-max sets the clients of each step itself and judges each by its own limit.
    // A list flag not given is '' here; --dashboard given bare is '' too.
    const alone = (['stage', 'stages', 'threshold', 'dashboard', 'summaryJson'] as const).filter((key) => a[key] !== undefined && (key === 'dashboard' || String(a[key]) !== ''));
    if (alone.length > 0) throw new Error(`--find-max runs steps of its own and takes none of --stage, --stages, --threshold, --dashboard, --summary-json (got ${alone.map(flagOf).join(', ')})`);
    if (a.scenario !== 'echo' && a.scenario !== 'broadcast') throw new Error(`--find-max runs the echo and broadcast scenarios (got --scenario ${String(a.scenario)})`);
    if (typeof a.p99Limit !== 'number' || !(a.p99Limit > 0)) throw new Error(`--p99-limit must be ms above 0 (got ${String(a.p99Limit)})`);
    if (typeof a.stepFactor !== 'number' || !(a.stepFactor > 1)) throw new Error(`--step-factor must be above 1 (got ${String(a.stepFactor)})`);
    if (typeof a.maxClients !== 'number' || !Number.isInteger(a.maxClients) || a.maxClients < 1) throw new Error(`--max-clients must be a whole number above 0 (got ${String(a.maxClients)})`);
    return true;
  })
  .parseAsync();

const options = optionsFromArgs(SWARM_OPTION_SPEC, args);
if (args.stages !== undefined) {
  if (options.stage?.length) usageError('swarm', '--stages and --stage exclude each other: give the stages one way');
  options.stage = await stagesFile(args.stages);
}

/** The stages of a JSON or YAML file, as --stage texts; a file that does not give them exits 2 saying why. */
async function stagesFile(path: string): Promise<string[]> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return usageError('swarm', `--stages ${path}: cannot read it (${(err as Error).message})`);
  }
  // YAML is a superset of JSON: one parser reads both. Loaded only for a run that has such a file.
  const { parse } = await import('yaml');
  try {
    return stagesOfDocument(parse(text));
  } catch (err) {
    return usageError('swarm', `--stages ${path}: ${(err as Error).message}`);
  }
}

if (args.findMax) {
  try {
    validateSwarmOptions(options);
  } catch (err) {
    usageError('swarm', (err as Error).message);
  }
  catchInterrupts();
  const name = args.name ?? `find-max-${options.scenario}-${stamp()}`;
  const rows: Row[] = [];
  const result = await findMax(options, {
    p99LimitMs: args.p99Limit as number,
    factor: args.stepFactor as number,
    maxClients: args.maxClients as number,
    onSwarm: (swarm) => {
      attachProgress(swarm);
      const done = interruptible(swarm);
      swarm.once('done', done);
    },
    onStep: (step) => {
      const s = step.summary;
      console.log(`find-max: ${step.clients} clients: p99 ${step.p99Ms ?? '-'} ms, errors ${step.errors}, lost ${step.lostDeliveries}, saturated: ${s.saturated} -> ${step.held ? 'held' : `failed (${step.why})`}`);
      rows.push({ clients: step.clients, p99_ms: step.p99Ms, p99_limit_ms: args.p99Limit as number, errors: step.errors, lost_deliveries: step.lostDeliveries, held: step.held ? 'yes' : 'no', why: step.why, saturated: s.saturated, server_cpu_max_pct: s.server ? Math.round(s.server.cpuMaxPct) : null, client_cpu_max_pct: Math.round(s.clientCpuMaxPct), ...hostColumns(s.host) });
    },
  });
  console.log(`find-max: the largest client count that held: ${result.held ?? 'none'} (${result.ended})`);
  for (const step of result.steps) console.log(`  ${String(step.clients).padStart(7)} clients  ${step.held ? 'held  ' : 'failed'}  p99 ${step.p99Ms ?? '-'} ms  saturated: ${step.summary.saturated}`);
  if (args.out) {
    mkdirSync(args.out, { recursive: true });
    const path = join(args.out, `${name}.csv`);
    writeCsv(path, rows);
    console.log(`csv: ${path}`);
  }
  process.exit(result.steps.at(-1)?.summary.interrupted ? 130 : result.held === null ? 1 : 0);
}

let swarm: Swarm;
try {
  swarm = new Swarm(options);
} catch (err) {
  usageError('swarm', (err as Error).message);
}
attachProgress(swarm);
const runName = args.name ?? `swarm-${scenarioLabel(swarm.options.scenario)}-${stamp()}`;
let dashboard: Dashboard | null = null;
if (args.dashboard !== undefined) {
  try {
    dashboard = await attachDashboard(swarm, Number(args.dashboard || 0), args.label);
  } catch (err) {
    usageError('swarm', `--dashboard: cannot listen on 127.0.0.1:${args.dashboard || 0} (${(err as Error).message})`);
  }
  console.error(`dashboard: ${dashboard.url}`);
}
if (args.out) {
  const paths = attachCsv(swarm, { dir: args.out, name: runName, label: args.label });
  swarm.on('done', () => {
    const named = [paths.metrics, paths.timings].filter((path) => existsSync(path)).map((path) => `, ${path}`).join('');
    console.log(`csv: ${paths.timeline}, ${paths.summary}${named}${paths.history ? `, appended to ${paths.history}` : ''}`);
  });
}
catchInterrupts();
const done = interruptible(swarm);
const summary = await swarm.run().catch((err: Error) => {
  // A scenario or data file that cannot be used is bad input (2); otherwise only what the run needs from
  // outside fails here: agents that did not come, a coordinator not reached.
  console.error(`swarm: ${err.message}`);
  process.exit(err instanceof ScenarioFileError ? 2 : 1);
});
done();
for (const line of summaryLines(summary, args.label)) console.log(line);
if (dashboard) {
  const report = dashboard.report();
  if (args.out && report) {
    const path = join(args.out, `${runName}-report.html`);
    writeFileSync(path, report);
    console.log(`report: ${path}`);
  }
  await dashboard.close();
}
if (args.summaryJson) {
  writeFileSync(args.summaryJson, `${JSON.stringify({ summary, row: summaryRow(summary, args.label, runName), thresholds: summary.thresholds }, null, 2)}\n`);
  console.log(`json: ${args.summaryJson}`);
}
// Ctrl-C: 130. With thresholds they decide (errors<=10 lets ten clients fail); without, every client must complete.
const stoppedByHand = summary.interrupted !== null && !summary.interrupted.startsWith('threshold ');
// Virtual users of concurrency stages run their scenario as often as time allows: there, no run may fail.
const virtualUsers = runsVirtualUsers(swarm.options.stage);
const allRan = virtualUsers ? totalErrors(summary.counters) === 0 && summary.counters.completed > 0 : summary.counters.completed === swarm.options.clients;
const failed = summary.thresholds.length > 0 ? summary.thresholds.some((t) => !t.pass) : !allRan;
process.exit(stoppedByHand ? 130 : failed ? 1 : 0);
