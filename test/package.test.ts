/**
 * The npm package, as a user gets it: `npm pack`, installed into an empty folder, gives working `npx`
 * commands (the server, the swarm, the baseline, and the one entry point with subcommands), an import
 * of the library by the package's name, and its types.
 *
 * The tarball is packed with --ignore-scripts: `make test` has just built dist/, and the prepack build
 * would rewrite files that other test files are loading at the same moment. That prepack exists (so a
 * plain `npm pack` builds first) is checked here too.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { spawnListening } from '../server/listening.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);
const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, any>;

describe('the npm package', () => {
  /** The tarball's folder; the user's project is `app` inside it. */
  let packed = '';
  let dir = '';
  before(async () => {
    packed = mkdtempSync(join(tmpdir(), 'package-'));
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', packed, '--json'], { cwd: ROOT });
    const [{ filename, files }] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    const paths = files.map((f) => f.path);
    assert.ok(paths.includes('dist/server/index.js') && paths.includes('dist/server/index.d.ts'), 'the library and its types are in the tarball');
    assert.ok(!paths.some((p) => p.startsWith('dist/test/') || p.startsWith('dist/bench/')), 'tests and benches stay out');
    const app = join(packed, 'app');
    await run('mkdir', ['-p', app]);
    // The user's own project: an empty package that approves the install scripts of ws's helpers as ours does.
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', allowScripts: manifest.allowScripts }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(packed, filename)], { cwd: app, timeout: 180_000 });
    dir = app;
  });
  after(() => {
    if (packed) rmSync(packed, { recursive: true, force: true });
  });

  it('builds before it packs (prepack)', () => {
    assert.match(manifest.scripts.prepack, /tsc/);
  });

  it('npx pubsub-swarm --help, and the same through uws-pubsub-bench swarm', async () => {
    for (const args of [['pubsub-swarm', '--help'], ['uws-pubsub-bench', 'swarm', '--help']]) {
      const { stdout } = await run('npx', ['--no-install', ...args], { cwd: dir });
      assert.match(stdout, /--clients\s+connections to open/);
      assert.match(stdout, /--scenario/);
    }
  });

  it('npx pubsub-server and npx pubsub-baseline start, answer and stop', async () => {
    // Ours serves /stats (with the pid) on its port only when asked; the baseline always does.
    for (const [bin, health, extra] of [['pubsub-server', '/health', ['--public-stats']], ['pubsub-baseline', '/health', []], ['uws-pubsub-bench', '/health', ['--public-stats']]] as const) {
      const { port, exited } = await spawnListening(['npx', '--no-install', bin, '--port', '0', '--host', '127.0.0.1', ...extra], { cwd: dir, stderr: 'inherit', timeoutMs: 20_000, label: bin });
      assert.equal((await fetch(`http://127.0.0.1:${port}${health}`)).status, 200, bin);
      // npx runs the program as a child of its own and does not pass signals on: signal the program.
      const { pid } = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as { pid: number };
      process.kill(pid, 'SIGTERM');
      assert.equal(await exited, 0, `${bin} exits 0 on SIGTERM, and npx with it`);
    }
  });

  it("import { createServer } from 'uws-pubsub-bench' works, typed", async () => {
    const program = `
      import { createServer } from 'uws-pubsub-bench';
      import { Swarm } from 'uws-pubsub-bench/swarm';
      import { connect } from 'uws-pubsub-bench/client';
      import WebSocket from 'ws';
      const server = createServer({ port: 0, host: '127.0.0.1', logLevel: 'silent', echo: true });
      const { port } = await server.listen();
      const health = await fetch('http://127.0.0.1:' + port + '/health');
      const swarm = await new Swarm({ url: 'ws://127.0.0.1:' + port, clients: 5, ramp: 0, delay: 0.05, rounds: 1 }).run();
      const client = connect('ws://127.0.0.1:' + port, { WebSocket });
      await client.subscribe('news', () => undefined).ready;
      await client.publish('news', 1);
      client.close();
      await server.close();
      console.log(JSON.stringify({ health: health.status, completed: swarm.counters.completed, client: 'published' }));
    `;
    writeFileSync(join(dir, 'use.mjs'), program);
    const { stdout } = await run(process.execPath, ['use.mjs'], { cwd: dir, timeout: 30_000 });
    assert.deepEqual(JSON.parse(stdout.trim().split('\n').at(-1)!), { health: 200, completed: 5, client: 'published' });

    writeFileSync(join(dir, 'use.ts'), program.replace("logLevel: 'silent'", "logLevel: 'silent', maxPayload: 65536"));
    // The user's project has Node's types (the package's own use node:* types); ours are borrowed for that.
    const compilerOptions = { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, typeRoots: [join(ROOT, 'node_modules', '@types')], types: ['node'] };
    // The user's own types of ws (@types/ws): not in this folder, so a declaration stands for them.
    writeFileSync(join(dir, 'ws.d.ts'), "declare module 'ws' { export default class WebSocket { constructor(url: string); } }\n");
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['use.ts', 'ws.d.ts'] }));
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir }).catch((err: { stdout: string }) => assert.fail(`the types do not check:\n${err.stdout}`));
    writeFileSync(join(dir, 'wrong.ts'), "import { createServer } from 'uws-pubsub-bench';\ncreateServer({ maxPayload: 'big' });\n");
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['wrong.ts'] }));
    const wrong = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir }).then(() => '', (err: { stdout: string }) => err.stdout);
    assert.match(wrong, /wrong\.ts\(2,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/, 'a wrong option type is a type error');
  });
});
