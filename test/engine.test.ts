/**
 * The engine: the newest native uWS build that loads on this Node and libc runs; the start banner, the
 * `listening` log line and /stats say which and why the others do not; where none loads the server
 * refuses to start (exit 2) naming the runtime and what works; and no path reaches the 20.30
 * republish's ws shim, not even UWS_USE_FALLBACK.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ENGINE_BUILDS, HEAD_LIMIT_ENV, loadEngine, NoEngineError, selectEngine, type EngineInfo, type Runtime } from '../server/engine.js';
import { DEFAULT_OPTIONS } from '../server/options.js';
import { TestClient } from './helpers/client.js';
import { spawnServer } from './helpers/process.js';
import { eventually } from './helpers/server.js';

const DIST = fileURLToPath(new URL('../', import.meta.url));
const require = createRequire(import.meta.url);

/** The folder of an installed build's package, found without loading it. */
function packageDir(alias: string): string {
  let dir = dirname(require.resolve(alias));
  while (!readdirSync(dir).includes('package.json')) dir = dirname(dir);
  return dir;
}

/** Whether a binary loads in a fresh process of `node` (this one already holds a uWS binary). */
function loadsAlone(path: string, node = process.execPath): boolean {
  return spawnSync(node, ['-e', `require(${JSON.stringify(path)})`], { encoding: 'utf8', timeout: 10_000 }).status === 0;
}

/** What `node` says of itself: its version and ABI. */
function runtimeOf(node: string): { version: string; abi: string } {
  const run = spawnSync(node, ['-p', 'JSON.stringify({ version: process.version, abi: process.versions.modules })'], { encoding: 'utf8', timeout: 10_000 });
  return JSON.parse(run.stdout) as { version: string; abi: string };
}

/**
 * The build that should run under `node`, found independently of server/engine.ts's search: each
 * build's binary for that Node's ABI, tried alone, newest build first; undefined when none loads.
 */
function expectedBuild(node: string): { package: string; version: string; binary: string } | undefined {
  const binary = `uws_${process.platform}_${process.arch}_${runtimeOf(node).abi}.node`;
  const build = ENGINE_BUILDS.find((b) => {
    const path = join(packageDir(b.package), b.binaries, binary);
    return readdirSync(dirname(path)).includes(binary) && loadsAlone(path, node);
  });
  return build && { package: build.package, version: versionOf(build.package), binary };
}

/** An installed build's version, from its package.json. */
function versionOf(alias: string): string {
  return (JSON.parse(readFileSync(join(packageDir(alias), 'package.json'), 'utf8')) as { version: string }).version;
}

/** Other Node binaries to start the CLI with (`.ci/node-lines` gives Node 22 and 24 here), besides this one. */
const OTHER_NODES = (process.env.TEST_OTHER_NODES ?? '').split(':').filter(Boolean);

/** The engine as this process loads it, with the server's default head limit (as a CLI without flags). */
const engine = (): EngineInfo => loadEngine(DEFAULT_OPTIONS.maxHeaderSize).info;

describe('engine', () => {
  it('runs the newest build whose binary loads here, and names the others with their reason', () => {
    const info = engine();
    const expected = expectedBuild(process.execPath);
    assert.ok(expected, 'some build loads on the Node that runs the suite');
    assert.equal(info.name, 'uws-native');
    assert.equal(info.version, expected.version);
    assert.equal(info.package, expected.package);
    assert.equal(info.binary, expected.binary);
    assert.equal(info.description, `uWebSockets.js ${expected.version} (native ${expected.binary})`);
    assert.equal(info.skipped.length, ENGINE_BUILDS.length - 1, 'every other build is named');
    for (const skipped of info.skipped) assert.ok(skipped.reason.length > 0, `${skipped.version} has a reason`);
  });

  it('the banner, the listening log line and /stats say which build runs and why the others do not', async () => {
    const server = await spawnServer(['--log-level', 'info']);
    try {
      const info = engine();
      const out = server.output();
      assert.match(out, new RegExp(`^engine: uWebSockets\\.js ${info.version.replace(/\./g, '\\.')} \\(native ${info.binary.replace(/\./g, '\\.')}\\)$`, 'm'));
      const skipped = info.skipped.map((s) => `uWebSockets.js ${s.version}: ${s.reason}`).join('; ');
      assert.ok(out.includes(`engine not used: ${skipped}\n`), out);
      // The log is on stderr and the banner on stdout: the log's line may come in after the banner's.
      // Whole lines only: the stderr's last chunk may end inside one.
      const logLines = (): Record<string, unknown>[] => server.output().split('\n').slice(0, -1).filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
      await eventually(() => logLines().some((line) => line.msg === 'listening'));
      const listening = logLines().find((line) => line.msg === 'listening');
      assert.equal(listening?.engine, info.description);
      assert.equal(listening?.engine_skipped, skipped);
      const stats = (await (await fetch(`${server.http}/stats`)).json()) as { engine: unknown };
      const { requestHeadLimit, ...rest } = info;
      assert.deepEqual(stats.engine, { ...rest, request_head_limit: requestHeadLimit });
    } finally {
      await server.kill();
    }
  });

  it('UWS_USE_FALLBACK reaches no shim: the server stays native and serves upgrades', async () => {
    const server = await spawnServer([], { env: { ...process.env, UWS_USE_FALLBACK: '1' } });
    try {
      assert.match(server.output(), /^engine: uWebSockets\.js \S+ \(native uws_\w+\.node\)$/m);
      for (let i = 0; i < 3; i++) {
        const { client, welcome } = await TestClient.pubsub(server.ws);
        assert.equal(welcome.event, 'welcome');
        client.send({ action: 'subscribe', payload: { channel: 'news' }, id: 1 });
        assert.equal((await client.next()).event, 'subscribed');
        client.close();
      }
      assert.equal((await fetch(`${server.http}/health`)).status, 200, 'still alive after the upgrades');
      assert.equal(server.child.exitCode, null);
    } finally {
      await server.kill();
    }
  });

  it('a process that serves an upgrade has loaded no JavaScript of either uWS package', () => {
    const program = `
      import { createRequire } from 'node:module';
      import WebSocket from 'ws';
      const { createServer } = await import(${JSON.stringify(new URL('../server/index.js', import.meta.url).href)});
      const server = createServer({ port: 0, host: '127.0.0.1', logLevel: 'silent' });
      const { port } = await server.listen();
      const ws = new WebSocket('ws://127.0.0.1:' + port + '/pubsub');
      await new Promise((resolve, reject) => { ws.once('message', resolve); ws.once('error', reject); });
      ws.close();
      await server.close();
      const cache = Object.keys(createRequire(import.meta.url).cache);
      console.log(JSON.stringify(cache.filter((path) => /[\\\\/]uws-20\\.\\d+[\\\\/]/.test(path))));
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', program], { cwd: DIST, encoding: 'utf8', timeout: 20_000, env: { ...process.env, UWS_USE_FALLBACK: '1' } });
    assert.equal(run.status, 0, run.stderr);
    const loaded = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as string[];
    assert.equal(loaded.length, 1, `one file of the uWS packages, the binary: ${loaded.join(', ')}`);
    assert.match(loaded[0], /\.node$/);
  });

  it('no compiled file imports or requires a uWS package by name: only server/engine.js resolves them', () => {
    const names = [...ENGINE_BUILDS.map((b) => b.package), 'uWebSockets.js'];
    const offenders: string[] = [];
    const visit = (dir: string): void => {
      for (const entry of readdirSync(dir)) {
        const path = join(dir, entry);
        if (statSync(path).isDirectory()) visit(path);
        else if (path.endsWith('.js') && !path.endsWith(join('server', 'engine.js'))) {
          const text = readFileSync(path, 'utf8');
          for (const name of names) if (text.includes(`'${name}'`) || text.includes(`"${name}"`)) offenders.push(`${path}: ${name}`);
        }
      }
    };
    for (const root of ['server', 'clients', 'bench', 'bin', 'examples']) visit(join(DIST, root));
    assert.deepEqual(offenders, []);
    const engine = readFileSync(join(DIST, 'server', 'engine.js'), 'utf8');
    // Binaries go through selectEngine's `load(path)`; by name the engine requires only ws's helpers.
    assert.deepEqual(engine.match(/\brequire\([^)]*\)/g), ["require('bufferutil')", "require('ws/package.json')"]);
  });

  for (const node of [process.execPath, ...OTHER_NODES]) {
    const { version, abi } = runtimeOf(node);
    it(`the CLI on Node ${version}: serves on the build that loads there, or exits 2 saying why none does`, async () => {
      const expected = expectedBuild(node);
      const cli = join(DIST, 'server', 'cli.js');
      if (expected) {
        const server = await spawnServer([], { node });
        try {
          assert.match(server.output(), new RegExp(`^engine: uWebSockets\\.js ${expected.version.replace(/\./g, '\\.')} \\(native ${expected.binary.replace(/\./g, '\\.')}\\)$`, 'm'));
          const { client, welcome } = await TestClient.pubsub(server.ws);
          assert.equal(welcome.event, 'welcome');
          client.close();
        } finally {
          await server.kill();
        }
      } else {
        const run = spawnSync(node, [cli, '--port', '0', '--host', '127.0.0.1'], { encoding: 'utf8', timeout: 20_000 });
        assert.equal(run.status, 2, run.stderr);
        assert.doesNotMatch(run.stdout, /listening:/);
        const escaped = version.replace(/\./g, '\\.');
        assert.match(run.stderr, new RegExp(`^pubsub-server: no native uWebSockets\\.js build loads on Node ${escaped} \\(ABI ${abi}\\), ${process.platform}-${process.arch}, `, 'm'));
        for (const build of ENGINE_BUILDS) assert.ok(run.stderr.includes(`\n  uWebSockets.js ${versionOf(build.package)}: `), `${build.package} is named with its reason`);
        assert.match(run.stderr, /^What runs:$/m);
      }
    });
  }

  it('uWS reads a request head of twice --max-header-size (20.57), or the environment\'s limit; the server\'s check decides below it', async () => {
    const limited = async (args: string[], env: NodeJS.ProcessEnv, expected: number): Promise<void> => {
      const server = await spawnServer(['--max-header-size', '4096', ...args], { env });
      try {
        const stats = (await (await fetch(`${server.http}/stats`)).json()) as { engine: { request_head_limit: number | null; version: string } };
        const honours = ENGINE_BUILDS.find((b) => versionOf(b.package) === stats.engine.version)!.headLimitEnv;
        assert.equal(stats.engine.request_head_limit, honours ? expected : null);
        // A plain request with a head of 1.5 x --max-header-size: under uWS's limit on either engine.
        const health = await fetch(`${server.http}/health`, { headers: { 'x-filler': 'a'.repeat(6000) } });
        assert.equal(health.status, 200);
      } finally {
        await server.kill();
      }
    };
    const { [HEAD_LIMIT_ENV]: _, ...clean } = process.env;
    await limited([], clean, 8192);
    await limited([], { ...clean, [HEAD_LIMIT_ENV]: '7000' }, 7000);
  });

  describe('where no build loads', () => {
    const runtime: Runtime = { platform: 'linux', arch: 'x64', abi: '147', node: 'v26.1.0', glibc: '2.36' };

    it('throws NoEngineError naming the Node, its ABI, the libc, each build with its reason, and what runs', () => {
      const error = (() => {
        try {
          selectEngine(ENGINE_BUILDS, runtime, 16_384);
        } catch (err) {
          return err;
        }
        assert.fail('selectEngine returned an engine for an ABI no build has');
      })();
      assert.ok(error instanceof NoEngineError);
      const message = error.message;
      assert.match(message, /^no native uWebSockets\.js build loads on Node v26\.1\.0 \(ABI 147\), linux-x64, glibc 2\.36:$/m);
      assert.match(message, /^ {2}uWebSockets\.js 20\.57\.0: no binary for Node 26 \(ABI 147\) on linux-x64; it has Node 20, Node 22, Node 24, Node 25$/m);
      assert.match(message, /^ {2}uWebSockets\.js 20\.30\.0-unofficial\.0: no binary for Node 26 \(ABI 147\) on linux-x64; it has Node 16, Node 18, Node 20$/m);
      assert.match(message, /^What runs:\n {2}uWebSockets\.js 20\.57\.0: Node 20, Node 22, Node 24, Node 25 on linux-x64 with glibc 2\.38 or later\n {2}uWebSockets\.js 20\.30\.0-unofficial\.0: Node 16, Node 18, Node 20 on linux-x64 with glibc 2\.27 or later$/m);
      assert.equal(error.skipped.length, 2);
    });

    it('says which glibc a binary needs when the loader refuses it, and skips a build that is not installed', () => {
      const load = (path: string): never => {
        throw new Error(`/lib/x86_64-linux-gnu/libc.so.6: version \`GLIBC_2.38' not found (required by ${path})`);
      };
      const builds = [{ package: 'uws-not-installed', binaries: '.', glibc: '2.40', headLimitEnv: true }, ...ENGINE_BUILDS];
      assert.throws(
        () => selectEngine(builds, { ...runtime, abi: '127', node: 'v22.23.3' }, 16_384, { resolve: require.resolve, load }),
        (err: NoEngineError) => {
          assert.deepEqual(err.skipped, [
            { version: 'uws-not-installed', reason: 'not installed' },
            { version: '20.57.0', reason: 'needs glibc 2.38 (this system has 2.36)' },
            { version: '20.30.0-unofficial.0', reason: 'no binary for Node 22 (ABI 127) on linux-x64; it has Node 16, Node 18, Node 20' },
          ]);
          return true;
        },
      );
    });
  });
});
