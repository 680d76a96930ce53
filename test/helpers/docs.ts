/**
 * What the docs tests (test/docs-*.test.ts) share: every command of README.md and docs/ runs, in its
 * short form, and prints what the docs say it prints.
 *
 * The commands are read from the documents' `sh` blocks; each is taken by a check of a docs test, and
 * test/docs-coverage.test.ts fails on a command that no docs test names, so a new command in the docs
 * needs a check.
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
import { after, before, beforeEach } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ephemeralRange } from './ports.js';
import { redisProcess, type RedisProcess } from './redis-process.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const DOCUMENTS = ['README.md', 'docs/protocol.md', 'docs/debugging.md', 'docs/architecture.md', 'docs/guide.md', 'docs/scenarios.md'];

export interface DocCommand {
  file: string;
  command: string;
  /** What the line's `# comment` says (often what the command prints). */
  comment: string;
}

/** The commands of a document's `sh` blocks: continuation lines joined, `for ... done` loops as one. */
export function commandsOf(file: string): DocCommand[] {
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

export const ALL = DOCUMENTS.flatMap(commandsOf);

/** Takes a command of a document for a check; fails when the document no longer has it. */
export function doc(file: string, command: string): DocCommand {
  const found = ALL.find((c) => c.file === file && c.command === command);
  assert.ok(found, `${file} has no command ${JSON.stringify(command)}: the docs changed; change this check with them`);
  return found;
}

/** The test's stand-ins for the ports and the Redis of the docs. */
export interface Places {
  /** First of the block that 9000-9999 map onto. */
  base: number;
  redis: RedisProcess;
  /** The Redis Cluster nodes standing for 7000, 7001, 7002, once the cluster scene made them. */
  cluster: number[];
}

export function mapped(command: string, places: Places): string {
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

export interface Result {
  code: number | null;
  /** stdout and stderr together */
  output: string;
  stdout: string;
}

/** Runs a command to its end in the repository (bash -c), stdout and stderr together. */
export function sh(command: string, { cwd = ROOT, timeout = 120_000 } = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', command], { cwd, timeout, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, CI: 'true' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr, stdout });
    });
  });
}

export interface Running {
  output(): string;
  /** Ctrl-C, as a terminal sends it (SIGINT to the process group); resolves with the exit code. */
  interrupt(): Promise<number | null>;
}

const running = new Set<Running>();

/** Starts a command that runs until stopped and resolves once its output matches `ready`. */
export function background(command: string, ready: RegExp, { cwd = ROOT, timeout = 30_000 } = {}): Promise<Running> {
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
export async function serve(command: string, places: Places, ready = /^listening: /m): Promise<Running> {
  return background(mapped(command, places), ready);
}

/** Runs a redis-cli command of docs/debugging.md; its output lines, and what the doc's comment says of them. */
export async function redisCli(command: string, places: Places): Promise<{ lines: string[]; comment: string }> {
  const taken = doc('docs/debugging.md', command);
  const { code, stdout, output } = await sh(mapped(command, places));
  assert.equal(code, 0, output);
  return { lines: stdout.trim().split('\n'), comment: taken.comment };
}

/** What a comment shows, before its explanation (in parentheses, or after a colon). */
export const shown = (comment: string): string => comment.split(/ {2,}\(| \(|: /)[0].trim();

export const health = async (port: number): Promise<number> => (await fetch(`http://127.0.0.1:${port}/health`)).status;


/**
 * The places of a docs test file, made in its `before` (a redis-server of its own, a free block for
 * 9000-9999, a scratch folder) and undone in its `after`; between checks every command still running
 * is stopped, so a check that failed midway cannot leave ports taken for the next.
 */
export function docPlaces(): Places & { scratch: string } {
  const places = { base: 0, redis: null as unknown as RedisProcess, cluster: [] as number[], scratch: '' };
  before(async () => {
    places.redis = await redisProcess();
    // 9000-9999 of the docs map onto a block below the ephemeral range, so no client socket takes a
    // port of it; a server start that finds its port taken fails the check that started it.
    const [ephemeralLow] = ephemeralRange();
    places.base = 10_000 + Math.floor(Math.random() * (ephemeralLow - 10_000 - 1000));
    places.scratch = mkdtempSync(join(tmpdir(), 'docs-'));
    const built = await sh('make build');
    assert.equal(built.code, 0, built.output);
  });
  beforeEach(async () => {
    for (const r of [...running]) await r.interrupt();
  });
  after(async () => {
    for (const r of [...running]) await r.interrupt();
    for (const port of places.cluster) await sh(`redis-cli -p ${port} shutdown nosave`);
    await places.redis?.kill();
    if (places.scratch) rmSync(places.scratch, { recursive: true, force: true });
  });
  return places;
}
