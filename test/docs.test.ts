/**
 * Every command of README.md and docs/ runs, in its short form, and prints what the docs say it prints.
 *
 * The commands are read from the documents' `sh` blocks; each is taken by exactly one check below, and
 * the last test fails on a command no check took, so a new command in the docs needs a check here.
 * What is changed before a command runs, and nothing else:
 * - ports: 9000-9999 become a free block of the test's (9000 -> B, 9001 -> B+1, 9100 -> B+100), the
 *   Redis Cluster's 7000-7002 the test's own nodes, 127.0.0.1:6379 a redis-server of the test's own
 *   (so the shared Redis sees nothing of it), and `make` gets that PORT and REDIS;
 * - sizes and durations, where a check says so (the short form: `--clients 10000` -> `--clients 500`);
 * - commands that run until stopped (servers, SUBSCRIBE, MONITOR) run in the background until the check
 *   has seen what the docs show, then get Ctrl-C (SIGINT to their process group);
 * - the long benchmarks (bench-c10k, soak, the 100,000-input fuzz) and `make test` itself run as
 *   `--help` only, which still proves every flag the docs give them exists.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FLAGS } from '../server/options.js';
import { TestClient } from './helpers/client.js';
import { ephemeralRange, onFreePort } from './helpers/ports.js';
import { pidOf } from './helpers/process.js';
import { redisProcess, type RedisProcess } from './helpers/redis-process.js';
import { eventually } from './helpers/server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOCUMENTS = ['README.md', 'docs/protocol.md', 'docs/debugging.md', 'docs/architecture.md'];

interface DocCommand {
  file: string;
  command: string;
  /** What the line's `# comment` says (often what the command prints). */
  comment: string;
}

/** The commands of a document's `sh` blocks: continuation lines joined, `for ... done` loops as one. */
function commandsOf(file: string): DocCommand[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const commands: DocCommand[] = [];
  for (const block of text.matchAll(/^```sh\n([\s\S]*?)^```/gm)) {
    const lines = block[1].split('\n');
    for (let i = 0; i < lines.length; i++) {
      let line = lines[i];
      while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1).trimEnd()} ${lines[++i].trim()}`;
      if (/^for .*; do$/.test(line.trim())) {
        const body: string[] = [];
        while (i + 1 < lines.length && lines[i + 1].trim() !== 'done') body.push(lines[++i].trim());
        i++;
        line = `${line.trim()} ${body.join('; ')}; done`;
      }
      const split = /^(.*?)\s{2,}#\s?(.*)$/.exec(line);
      const command = (split ? split[1] : line).trim();
      if (command === '' || command.startsWith('#')) continue;
      commands.push({ file, command, comment: split ? split[2].trim() : '' });
    }
  }
  return commands;
}

const ALL = DOCUMENTS.flatMap(commandsOf);
const taken = new Set<string>();

/** Takes a command of a document for a check; fails when the document no longer has it. */
function doc(file: string, command: string): DocCommand {
  const found = ALL.find((c) => c.file === file && c.command === command);
  assert.ok(found, `${file} has no command ${JSON.stringify(command)}: the docs changed; change this check with them`);
  taken.add(`${file}: ${command}`);
  return found;
}

/** The test's stand-ins for the ports and the Redis of the docs. */
interface Places {
  /** First of the block that 9000-9999 map onto. */
  base: number;
  redis: RedisProcess;
  /** The Redis Cluster nodes standing for 7000, 7001, 7002, once the cluster scene made them. */
  cluster: number[];
}

function mapped(command: string, places: Places): string {
  let out = command
    .replace(/\b9(\d{3})\b/g, (_, n: string) => String(places.base + Number(n)))
    .replace(/\b700([0-2])\b/g, (whole, n: string) => (places.cluster.length ? String(places.cluster[Number(n)]) : whole))
    .replace(/127\.0\.0\.1:6379/g, `127.0.0.1:${places.redis.port}`)
    .replace(/^redis-cli (?!-p |-c |--cluster )/, `redis-cli -p ${places.redis.port} `);
  if (/^make /.test(out)) {
    if (!/\bPORT=/.test(out)) out = out.replace(/^make (\S+)/, `make $1 PORT=${places.base}`);
    if (!/\bREDIS=/.test(out)) out = out.replace(/^make (\S+)/, `make $1 REDIS=${places.redis.url}`);
  }
  return out;
}

interface Result {
  code: number | null;
  /** stdout and stderr together */
  output: string;
  stdout: string;
}

/** Runs a command to its end in the repository (bash -c), stdout and stderr together. */
function sh(command: string, { cwd = ROOT, timeout = 120_000 } = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', command], { cwd, timeout, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, CI: 'true' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr, stdout });
    });
  });
}

interface Running {
  output(): string;
  /** Ctrl-C, as a terminal sends it (SIGINT to the process group); resolves with the exit code. */
  interrupt(): Promise<number | null>;
}

const running = new Set<Running>();

/** Starts a command that runs until stopped and resolves once its output matches `ready`. */
function background(command: string, ready: RegExp, { cwd = ROOT, timeout = 30_000 } = {}): Promise<Running> {
  const child = spawn('bash', ['-c', `exec ${command}`], { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: 'true' } });
  let out = '';
  child.stdout!.on('data', (chunk) => (out += chunk));
  child.stderr!.on('data', (chunk) => (out += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const handle: Running = {
    output: () => out,
    interrupt: async () => {
      running.delete(handle);
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid!, 'SIGINT');
        } catch {
          // already gone
        }
        const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      return child.exitCode;
    },
  };
  running.add(handle);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command}: nothing like ${ready} within ${timeout} ms:\n${out}`)), timeout);
    const check = (): void => {
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve(handle);
      }
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    check(); // a pattern that matches nothing yet (/^/) means: ready at once
    void exited.then((code) => {
      clearTimeout(timer);
      if (!ready.test(out)) reject(new Error(`${command} exited with ${code} before ${ready}:\n${out}`));
    });
  });
}

/** A server command of the docs, started; the check then stops it with Ctrl-C and it must shut down cleanly. */
async function serve(command: string, places: Places, ready = /^listening: /m): Promise<Running> {
  return background(mapped(command, places), ready);
}

/** Runs a redis-cli command of docs/debugging.md; its output lines, and what the doc's comment says of them. */
async function redisCli(command: string, places: Places): Promise<{ lines: string[]; comment: string }> {
  const taken = doc('docs/debugging.md', command);
  const { code, stdout, output } = await sh(mapped(command, places));
  assert.equal(code, 0, output);
  return { lines: stdout.trim().split('\n'), comment: taken.comment };
}

/** What a comment shows, before its explanation (in parentheses, or after a colon). */
const shown = (comment: string): string => comment.split(/ {2,}\(| \(|: /)[0].trim();

const health = async (port: number): Promise<number> => (await fetch(`http://127.0.0.1:${port}/health`)).status;

describe('the commands of README.md and docs/', () => {
  const places: Places = { base: 0, redis: null as unknown as RedisProcess, cluster: [] };
  let scratch = '';
  before(async () => {
    places.redis = await redisProcess();
    // 9000-9999 of the docs map onto a block below the ephemeral range, so no client socket takes a
    // port of it; a server start that finds its port taken fails the check that started it.
    const [ephemeralLow] = ephemeralRange();
    places.base = 10_000 + Math.floor(Math.random() * (ephemeralLow - 10_000 - 1000));
    scratch = mkdtempSync(join(tmpdir(), 'docs-'));
    const built = await sh('make build');
    assert.equal(built.code, 0, built.output);
  });
  // A check that failed midway leaves its servers running; the next check must not find their ports taken.
  beforeEach(async () => {
    for (const r of [...running]) await r.interrupt();
  });
  after(async () => {
    for (const r of [...running]) await r.interrupt();
    for (const port of places.cluster) await sh(`redis-cli -p ${port} shutdown nosave`);
    await places.redis?.kill();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

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
  });

  it('README: make cluster in its forms, make baseline', async () => {
    const four = await serve(doc('README.md', 'make cluster WORKERS=4').command, places);
    assert.match(four.output(), new RegExp(`^listening: ws://127\\.0\\.0\\.1:${places.base}/pubsub .*\\(4 workers\\)`, 'm'));
    const pids = new Set<number>();
    for (let i = 0; i < 24 && pids.size < 4; i++) pids.add(await pidOf(places.base));
    assert.ok(pids.size >= 2, `the connections were spread over the workers (${pids.size} pids)`);
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
    assert.match(micro.output, /bench-micro: 8\/8 encode welcome: \d+ ops\/s/);
    assert.match(micro.output, /'parse publish'\s+│\s+\d+/);
  });

  it('README: the fuzz run in its short form; the long benchmarks and make test take their flags', async () => {
    const short = doc('README.md', 'make fuzz ARGS="--inputs 5000 --seed 42 --quiet-seconds 5"');
    const fuzz = await sh(mapped(short.command.replace('--inputs 5000', '--inputs 1000').replace('--quiet-seconds 5', `--quiet-seconds 2 --out ${scratch}`), places));
    assert.match(fuzz.output, /PASS {2}every input answered as it must be: 1000 inputs, 0 mismatches/);
    assert.match(fuzz.output, /^fuzz: (PASS|FAIL)$/m, 'it says PASS or FAIL as the docs say');

    for (const [file, command, flags] of [
      ['README.md', 'make bench-c10k', ['--quick']],
      ['README.md', 'make fuzz', ['--inputs', '--seed']],
      ['README.md', 'make soak', ['--minutes']],
      ['README.md', 'make soak ARGS="--minutes 2"', ['--minutes']],
    ] as const) {
      doc(file, command);
      const target = command.split(' ')[1];
      const help = await sh(`make ${target} ARGS=--help`);
      assert.equal(help.code, 0, help.output);
      for (const flag of flags) assert.ok(help.output.includes(flag), `make ${target} takes ${flag}`);
    }
    // `make test` is this very run; the Makefile must have the target README names.
    doc('README.md', 'make test');
    assert.match(readFileSync(join(ROOT, 'Makefile'), 'utf8'), /^test: build$/m);
  });

  it('README: the swarm examples, against make server and make cluster', async () => {
    const server = await serve('make server', places);
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
    const three = await serve('make cluster WORKERS=3 ARGS="--worker-ports consecutive"', places);
    try {
      const urls = doc('README.md', 'make swarm ARGS="--url ws://127.0.0.1:9000,ws://127.0.0.1:9001,ws://127.0.0.1:9002 --scenario broadcast --clients 3 --publishers 1 --rate 20000 --duration 10 --warmup 3 --ramp 0"');
      const spread = await sh(mapped(urls.command.replace('--rate 20000', '--rate 2000').replace('--duration 10', '--duration 2').replace('--warmup 3', '--warmup 1'), places));
      assert.equal(spread.code, 0, spread.output);
      assert.match(spread.output, /deliveries (\d+)\/\1 \(lost 0\)/);
    } finally {
      await three.interrupt();
    }
  });

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
    const server = await serve(doc('docs/debugging.md', 'make server ARGS="--redis redis://127.0.0.1:6379 --expire 60 --publish-key secret"').command, places);
    const { client } = await TestClient.pubsub(`ws://127.0.0.1:${places.base}`);
    try {
      await eventually(async () => (await health(places.base)) === 200, 10_000);
      assert.equal((await client.request({ action: 'subscribe', payload: { channel: 'news' }, id: 1 })).event, 'subscribed');
      const cli = (command: string) => redisCli(command, places);

      let channels = await cli(`redis-cli PUBSUB CHANNELS '*'`);
      for (let i = 0; i < 50 && !channels.lines.includes('broadcast:news'); i++) channels = await cli(`redis-cli PUBSUB CHANNELS '*'`);
      assert.deepEqual(channels.lines, [shown(channels.comment)]);
      const numsub = await cli('redis-cli PUBSUB NUMSUB broadcast:news');
      assert.equal(numsub.lines.join(' '), shown(numsub.comment));

      const hello = await cli(`redis-cli PUBLISH broadcast:news '{"headline":"hello"}'`);
      assert.deepEqual(hello.lines, [shown(hello.comment)]);
      assert.deepEqual(await client.next(), { event: 'message', channel: 'news', message: { headline: 'hello' } });
      const notJson = await cli(`redis-cli PUBLISH broadcast:news 'not json'`);
      assert.deepEqual(notJson.lines, [shown(notJson.comment)]);
      assert.deepEqual(await client.next(), { event: 'message', channel: 'news', message: 'not json' }, 'arrives as the JSON string "not json"');

      // Watching: redis-cli SUBSCRIBE and PSUBSCRIBE run until stopped; they show what is published meanwhile.
      const watchNews = doc('docs/debugging.md', 'redis-cli SUBSCRIBE broadcast:news');
      const subscribe = await background(mapped(watchNews.command, places), /^1$/m);
      const watchUsers = doc('docs/debugging.md', `redis-cli PSUBSCRIBE 'user:*'`);
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
      const john = await cli(`redis-cli PUBLISH user:john:chat '"a private word"'`);
      assert.equal(john.lines[0], '1', 'the PSUBSCRIBE above is its one receiver');
      assert.match(john.comment, /^0, or 1 while the PSUBSCRIBE above watches/);
      await eventually(() => subscribe.output().split('\n').join(' ').includes(shown(watchNews.comment)), 5000);
      await eventually(() => psubscribe.output().split('\n').join(' ').includes(shown(watchUsers.comment)), 5000);
      await eventually(() => /"evalsha" "[0-9a-f]{40}" "1" "broadcast:news"/.test(monitor.output()), 5000);
      const call = monitor.output().split('\n').find((line) => line.includes('"evalsha"'))!;
      assert.ok(call.includes(shown(monitorCommand.comment).replace('"<sha1>" ', '').replace(/^"evalsha" /, '')), `MONITOR shows ${call}`);
      const sha = /"evalsha" "([0-9a-f]{40})"/.exec(call)![1];
      const exists = doc('docs/debugging.md', 'redis-cli SCRIPT EXISTS <sha1>');
      assert.equal((await sh(mapped(exists.command.replace('<sha1>', sha), places))).output.trim(), shown(exists.comment).split(':')[0]);
      for (const watcher of [subscribe, psubscribe, monitor]) await watcher.interrupt();

      const keys = await cli(`redis-cli KEYS '*'`);
      assert.ok(keys.lines.includes(shown(keys.comment)), keys.lines.join(', '));
      const get = await cli('redis-cli GET broadcast:news');
      assert.deepEqual(get.lines, [shown(get.comment)]);
      const ttl = await cli('redis-cli TTL broadcast:news');
      assert.ok(Number(ttl.lines[0]) > 0 && Number(ttl.lines[0]) <= 60, `TTL ${ttl.lines[0]}; the docs say ${ttl.comment}`);
      const del = await cli('redis-cli DEL broadcast:news');
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
        await sh(mapped(loop.command, places), { cwd: scratch });
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

    const cluster = await serve(doc('docs/debugging.md', 'make cluster WORKERS=2 ARGS="--redis-cluster 127.0.0.1:7000,127.0.0.1:7001 --expire 60" REDIS=').command, places);
    const { client } = await TestClient.pubsub(`ws://127.0.0.1:${places.base}`);
    try {
      await eventually(async () => (await health(places.base)) === 200, 10_000);
      assert.equal((await client.request({ action: 'subscribe', payload: { channel: 'news' }, id: 1 })).event, 'subscribed');
      const cli = (command: string) => redisCli(command, places);

      const slot = await cli('redis-cli -p 7000 CLUSTER KEYSLOT broadcast:news');
      assert.deepEqual(slot.lines, [shown(slot.comment)]);
      const shards = await cli('redis-cli -p 7000 CLUSTER SHARDS');
      const lines = shards.lines;
      const own = lines.findIndex((line, i) => line === '0' && lines[i + 1] === '5460');
      assert.ok(own >= 0 && lines.slice(own, own + 12).includes(String(places.cluster[0])), 'slots 0-5460 are on the first node, as the docs say');
      let channels = await cli(`redis-cli -p 7000 PUBSUB SHARDCHANNELS 'broadcast:*'`);
      for (let i = 0; i < 50 && channels.lines[0] !== 'broadcast:news'; i++) channels = await cli(`redis-cli -p 7000 PUBSUB SHARDCHANNELS 'broadcast:*'`);
      assert.deepEqual(channels.lines, [shown(channels.comment)]);
      const numsub = await cli('redis-cli -p 7000 PUBSUB SHARDNUMSUB broadcast:news');
      assert.equal(numsub.lines.join(' '), shown(numsub.comment));

      const spublish = await cli(`redis-cli -c -p 7000 SPUBLISH broadcast:news '{"x":1}'`);
      assert.deepEqual(spublish.lines, [shown(spublish.comment)], 'one instance has a subscriber of news');
      assert.deepEqual(await client.next(), { event: 'message', channel: 'news', message: { x: 1 } });
      // The cache holds what went through a server: a client's publish, not redis-cli's SPUBLISH.
      assert.equal((await client.request({ action: 'publish', payload: { channel: 'news', message: { x: 2 } }, id: 2 })).event, 'published');
      assert.deepEqual(await client.next(), { event: 'message', channel: 'news', message: { x: 2 } });
      const get = await cli('redis-cli -c -p 7000 GET broadcast:news');
      assert.deepEqual(get.lines, [shown(get.comment).split(' ')[0]]);

      const watch = doc('docs/debugging.md', 'redis-cli -p 7000 SSUBSCRIBE broadcast:news');
      const ssubscribe = await background(mapped(watch.command, places), /^1$/m);
      assert.equal((await sh(mapped(`redis-cli -c -p 7000 SPUBLISH broadcast:news '{"x":1}'`, places))).stdout.trim(), '2', 'the instance, and the SSUBSCRIBE watching');
      await eventually(() => ssubscribe.output().split('\n').join(' ').includes(shown(watch.comment)), 5000);
      await ssubscribe.interrupt();
      assert.deepEqual(await client.next(), { event: 'message', channel: 'news', message: { x: 1 } });
    } finally {
      await client.close();
      await cluster.interrupt();
    }
  });

  it('every command of the docs was taken by a check above', () => {
    const missed = ALL.filter((c) => !taken.has(`${c.file}: ${c.command}`)).map((c) => `${c.file}: ${c.command}`);
    assert.deepEqual(missed, []);
  });
});
