/** Swarm option validation (one test per message), the swarm and bench commands' flags, and a CLI run with CSVs. */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DEFAULT_SWARM_OPTIONS, SWARM_FLAGS, scenarioUrl, scenarioUrls, validateSwarmOptions } from '../clients/swarm/options.js';
import { readCsv } from '../clients/swarm/output/csv.js';
import { startServer } from './helpers/server.js';

const script = (path: string): string => fileURLToPath(new URL(path, import.meta.url));
const SWARM = script('../clients/cli.js');
const BENCHES = ['c10k', 'slow', 'broadcast', 'http', 'redis', 'c100k', 'swarm', 'c1m', 'vs-artillery'].map((name) => script(`../bench/${name}.js`));

describe('validateSwarmOptions', () => {
  it('fills in the defaults and derives workers and the timeout', () => {
    const o = validateSwarmOptions({});
    assert.equal(o.clients, DEFAULT_SWARM_OPTIONS.clients);
    assert.equal(o.workers, 2, 'one worker per 5000 clients');
    assert.equal(o.timeout, 120 + 3 * 60 + 30 + 10, 'ramp + rounds x delay + margin');
    assert.equal(validateSwarmOptions({ clients: 1 }).workers, 1);
  });

  it('takes a user scenario by its path, with its data, in any protocol, and gives it the ramp and 300 s', () => {
    const o = validateSwarmOptions({ scenario: 'flows/login.ts', data: 'users.csv', protocol: 'socketio', ramp: 10 });
    assert.equal(o.scenario, 'flows/login.ts');
    assert.equal(o.data, 'users.csv');
    assert.equal(o.timeout, 10 + 300 + 30 + 10);
    assert.equal(validateSwarmOptions({ scenario: './flow.mjs', protocol: 'raw' }).protocol, 'raw');
  });

  const bad: [Record<string, unknown>, RegExp][] = [
    [{ url: 'http://x' }, /^--url must be a ws:\/\/ or wss:\/\/ URL \(or several, comma-separated\) \(got "http:\/\/x"\)$/],
    [{ url: 'nonsense' }, /^--url must be a ws:\/\/ or wss:\/\/ URL/],
    [{ url: 'ws://a:1,http://b:2' }, /^--url must be a ws:\/\/ or wss:\/\/ URL \(or several, comma-separated\)/],
    [{ scenario: 'flood' }, /^--scenario must be one of echo, slow, broadcast, pubsub, crowd, or the path of a \.js, \.mjs, \.ts or \.mts file \(got "flood"\)$/],
    [{ scenario: 'flow.py' }, /^--scenario must be one of echo, .* or the path of a \.js, \.mjs, \.ts or \.mts file \(got "flow\.py"\)$/],
    [{ scenario: 'echo', data: 'users.csv' }, /^--data is for a user scenario \(a file given to --scenario\); echo reads no data$/],
    [{ scenario: 'slow', protocol: 'raw' }, /^--protocol raw runs the echo and broadcast scenarios only; slow needs our contract/],
    [{ clients: 0 }, /^--clients must be an integer from 1 to 1000000 \(got 0\)$/],
    [{ scenario: 'crowd', rounds: 1, delay: 2, broadcastEvery: 5 }, /^--broadcast-every must fit at least once into --rounds x --delay \(2 s\)/],
    [{ broadcastEvery: 0 }, /^--broadcast-every must be seconds above 0, at most 3600 \(got 0\)$/],
    [{ ramp: -1 }, /^--ramp must be seconds from 0 to 3600 \(got -1\)$/],
    [{ delay: 'soon' }, /^--delay must be seconds from 0 to 3600 \(got "soon"\)$/],
    [{ rounds: 0 }, /^--rounds must be an integer from 1/],
    [{ payload: -1 }, /^--payload must be an integer from 0/],
    [{ slowMs: 60_001 }, /^--slow-ms must be an integer from 1 to 60000/],
    [{ requests: 0 }, /^--requests must be an integer from 1/],
    [{ rate: 0 }, /^--rate must be publishes per second, above 0 \(got 0\)$/],
    [{ duration: -2 }, /^--duration must be seconds/],
    [{ drain: 'x' }, /^--drain must be seconds/],
    [{ scenario: 'broadcast', clients: 3, publishers: 3 }, /^--publishers must leave at least one subscriber among the 3 clients \(got 3\)$/],
    [{ publishers: -1 }, /^--publishers must be an integer from 0/],
    [{ duration: 2, warmup: 2 }, /^--warmup must be shorter than --duration \(2 s\) \(got 2\)$/],
    [{ channels: 0 }, /^--channels must be an integer from 1/],
    [{ channel: 'no spaces' }, /^--channel must be 1 to 160 characters/],
    [{ workers: 65 }, /^--workers must be an integer from 0 to 64/],
    [{ sourceAddresses: ['localhost'] }, /^--source-addresses must be a comma-separated list of local IP addresses/],
    [{ connectTimeout: 0 }, /^--connect-timeout must be an integer from 1/],
    [{ replyTimeout: 1.5 }, /^--reply-timeout must be an integer from 1/],
    [{ timeout: -1 }, /^--timeout must be seconds from 0/],
    [{ serverPid: -1 }, /^--server-pid must be an integer from 0/],
    [{ hostCheck: -1 }, /^--host-check must be seconds from 0 to 60 \(got -1\)$/],
    [{ clients: 20_000, workers: 1 }, /^--workers must give each worker at most 18000 clients \(one process may hold 20,000 open files\)/],
    [{ clients: 30_000, workers: 2, sourceAddresses: ['127.0.0.1'] }, /^--source-addresses must give each address at most 27000 clients/],
  ];
  for (const [input, message] of bad) {
    it(`refuses ${JSON.stringify(input)}`, () => {
      assert.throws(() => validateSwarmOptions(input as never), (err: Error) => err instanceof RangeError && message.test(err.message));
    });
  }

  it('refuses an unknown option by name', () => {
    assert.throws(() => validateSwarmOptions({ colour: 'red' } as never), /^TypeError: unknown swarm option: colour$/);
  });

  it('puts the scenario path on a bare URL and keeps a given one', () => {
    const o = (input: Record<string, unknown>) => validateSwarmOptions(input);
    assert.equal(scenarioUrl(o({ url: 'ws://h:1' })), 'ws://h:1/echo?rounds=3');
    assert.equal(scenarioUrl(o({ url: 'ws://h:1', scenario: 'broadcast' })), 'ws://h:1/pubsub');
    assert.equal(scenarioUrl(o({ url: 'ws://h:1/my/echo?rounds=5', rounds: 2 })), 'ws://h:1/my/echo?rounds=5');
    assert.deepEqual(scenarioUrls(o({ url: 'ws://h:1, ws://h:2', scenario: 'pubsub' })), ['ws://h:1/pubsub', 'ws://h:2/pubsub']);
  });
});

describe('the swarm and bench commands', () => {
  it('swarm --help explains every flag', () => {
    const help = spawnSync(process.execPath, [SWARM, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    for (const flag of [...Object.values(SWARM_FLAGS), '--out', '--name', '--label', '--stages', '--dashboard', '--summary-json']) assert.ok(help.stdout.includes(flag), `--help shows ${flag}`);
  });

  for (const [args, message] of [
    [['--clients', 'many'], /--clients must be an integer from 1 to 1000000 \(got "many"\)/],
    [['--scenario', 'flood'], /scenario/],
    [['--colour', 'red'], /Unknown argument: colour/],
    [['--find-max', '--dashboard'], /--find-max runs steps of its own and takes none of .* \(got --dashboard\)/],
    [['--find-max', '--stage', '1s:5', '--threshold', 'errors==0'], /\(got --stage, --threshold\)/],
    [['--dashboard', 'port'], /--dashboard takes a port, 0 to 65535, or nothing for a free one \(got "port"\)/],
  ] as const) {
    it(`swarm ${args.join(' ')} exits 2 naming the flag`, () => {
      const run = spawnSync(process.execPath, [SWARM, ...args], { encoding: 'utf8' });
      assert.equal(run.status, 2);
      assert.match(run.stderr, message);
    });
  }

  it('every bench has --help and refuses a bad flag by name', () => {
    for (const bench of BENCHES) {
      const help = spawnSync(process.execPath, [bench, '--help'], { encoding: 'utf8' });
      assert.equal(help.status, 0, `${bench} --help`);
      assert.match(help.stdout, /--out/);
      const bad = spawnSync(process.execPath, [bench, '--bogus', '1'], { encoding: 'utf8' });
      assert.equal(bad.status, 2, `${bench} with a bad flag`);
      assert.match(bad.stderr, /Unknown argument: bogus/);
    }
    const clients = spawnSync(process.execPath, [BENCHES[0], '--clients', 'x'], { encoding: 'utf8' });
    assert.equal(clients.status, 2, 'a bad swarm value stops bench-c10k before it starts a server');
    assert.match(clients.stderr, /^bench-c10k: --clients must be an integer from 1 to 1000000 \(got "x"\)/);
    assert.doesNotMatch(clients.stdout, /server pid/);
    const levels = spawnSync(process.execPath, [BENCHES[2], '--servers', 'ours,nginx'], { encoding: 'utf8' });
    assert.equal(levels.status, 2);
    assert.match(levels.stderr, /--servers: unknown server nginx/);
    // Refused before it installs Artillery or starts a server.
    const rate = spawnSync(process.execPath, [BENCHES[8], '--rate', '0', '--artillery-dir', join(tmpdir(), 'never-installed')], { encoding: 'utf8' });
    assert.equal(rate.status, 2);
    assert.match(rate.stderr, /--rate must be new virtual users per second above 0/);
    assert.doesNotMatch(rate.stdout, /installing artillery/);
  });

  it('bench-http measures both endpoints against a real server and writes its CSV', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-http-'));
    const run = await promisify(execFile)(process.execPath, [BENCHES[3], '--duration', '1', '--connections', '2', '--subscribers', '1', '--out', dir], { timeout: 60_000 });
    assert.match(run.stdout, /^POST \/publish: \d+ req\/s, latency p50 [\d.]+ ms p99 [\d.]+ ms, non-2xx 0, errors 0; .* -> saturated: \w+$/m);
    assert.match(run.stdout, /^GET \/stats: \d+ req\/s, .*non-2xx 0, errors 0;/m);
    const csv = readdirSync(dir).find((file) => /^http-.*\.csv$/.test(file));
    assert.ok(csv, 'the CSV is written');
    const rows = readCsv(join(dir, csv));
    assert.deepEqual(rows.map((row) => row.endpoint), ['POST /publish', 'GET /stats']);
    for (const row of rows) assert.ok(Number(row.requests_per_s) > 0, `${row.endpoint} answered requests`);
  });

  it('swarm runs against a URL, prints the peak and summary, and writes the CSVs', async () => {
    const server = await startServer();
    const dir = mkdtempSync(join(tmpdir(), 'swarm-cli-'));
    try {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [SWARM, '--url', server.ws, '--clients', '50', '--ramp', '0.2', '--delay', '0.5', '--rounds', '2', '--host-check', '0.3', '--out', dir, '--name', 'cli'],
        { encoding: 'utf8', timeout: 30_000 },
      );
      assert.match(stdout, /^50 clients are connected!$/m);
      assert.match(stdout, /completed 50\/50 {3}errors 0/);
      assert.match(stdout, /^host {5}stalled \d+\.\d% of 0\.3 s on \d+ spinning threads \(longest \d+\.\d ms\), reference work \d+ ms/m);
      assert.deepEqual(readdirSync(dir).sort(), ['cli-summary.csv', 'cli-timeline.csv', 'history.csv']);
      const [header, row] = readFileSync(join(dir, 'cli-summary.csv'), 'utf8').trim().split('\n');
      assert.match(header, /^run,server,scenario,url,clients,workers/);
      assert.match(header, /,host_stalled_pct,host_longest_stall_ms,host_reference_ms$/);
      const [stalled, longest, reference] = row.split(',').slice(-3).map(Number);
      assert.ok(stalled >= 0 && stalled <= 100, `host_stalled_pct ${stalled}`);
      assert.ok(longest >= 0 && longest <= 300, `host_longest_stall_ms ${longest}`);
      assert.ok(reference > 0, `host_reference_ms ${reference}`);
    } finally {
      await server.close();
    }
  });
});
