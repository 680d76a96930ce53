/**
 * Chooses and loads the native uWebSockets.js engine.
 *
 * Two builds are installed under npm aliases (package.json, {@link ENGINE_BUILDS}); each holds one
 * binary per platform, arch and Node ABI. The newest build whose binary loads on this Node and libc
 * runs. Only `.node` binaries are ever required, never a package's entry point: the 20.30 republish's
 * entry swaps in a `ws` shim when its binary does not load (or when UWS_USE_FALLBACK is set), and that
 * shim dies on the first upgrade our handlers make. When no build loads there is no engine: loadEngine
 * throws {@link NoEngineError}, which names the Node and libc found and the combinations that work, and
 * the CLI exits 2 with it (docs/architecture.md, "The engine", says why there is no fallback).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** The uWebSockets.js module; the types are 20.57's, whose API 20.30 also has wherever this code uses it. */
export type Uws = typeof import('uws-20.57');
export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, us_socket_context_t, WebSocket, WebSocketBehavior } from 'uws-20.57';

/** One native build of uWebSockets.js that this package depends on. */
export interface EngineBuild {
  /** The npm alias it is installed under (package.json). */
  package: string;
  /** Folder of its binaries, relative to the package's. */
  binaries: string;
  /** The newest glibc symbol version its Linux binaries need (objdump -T), for the refusal's advice. */
  glibc: string;
  /** Whether its binary reads {@link HEAD_LIMIT_ENV} as it loads. */
  headLimitEnv: boolean;
}

/** The builds, newest first: the first that loads runs. */
export const ENGINE_BUILDS: readonly EngineBuild[] = [
  { package: 'uws-20.57', binaries: '.', glibc: '2.38', headLimitEnv: true },
  { package: 'uws-20.30', binaries: 'binaries', glibc: '2.27', headLimitEnv: false },
];

/**
 * uWS 20.57 reads at most this many bytes of a request head (its default 4096), read from the
 * environment once, as its binary loads; a longer head gets uWS's own 431 before any handler runs, so
 * the server can neither count it nor decide otherwise. 20.30 has no such variable: it reads a head of
 * any size that comes in one read and drops one over 4 KB that comes in several.
 */
export const HEAD_LIMIT_ENV = 'UWS_HTTP_MAX_HEADERS_SIZE';

/**
 * Unless the environment sets {@link HEAD_LIMIT_ENV}, uWS's limit is this many times
 * `--max-header-size`: an upgrade head somewhat over the limit then reaches the server's own check
 * (431, counted in `refused.header_too_large`), and no head costs more than twice the limit to hold.
 */
export const HEAD_LIMIT_FACTOR = 2;

/** What decides which binary can load: the platform, the arch, Node's ABI and the C library. */
export interface Runtime {
  platform: string;
  arch: string;
  /** `process.versions.modules`: the ABI a binary is built for. */
  abi: string;
  /** `process.version`. */
  node: string;
  /** The glibc version at run time; null where there is none (musl, macOS, Windows). */
  glibc: string | null;
}

/** This process's runtime. */
export function currentRuntime(): Runtime {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return { platform: process.platform, arch: process.arch, abi: process.versions.modules, node: process.version, glibc: header?.glibcVersionRuntime ?? null };
}

/** A build that did not run, and why. */
export interface SkippedBuild {
  /** The package's version, or its alias when it is not installed. */
  version: string;
  reason: string;
}

/** Which engine serves the sockets. */
export interface EngineInfo {
  /** Always `uws-native`: the C++ uWebSockets (there is no other engine; the name stays for /stats readers). */
  name: 'uws-native';
  /** Version of the build that runs. */
  version: string;
  /** The npm alias it came from. */
  package: string;
  /** File name of the loaded binary. */
  binary: string;
  /** One line for logs and benchmark output: `uWebSockets.js <version> (native <binary>)`. */
  description: string;
  /** The other builds installed, and why each does not run. */
  skipped: SkippedBuild[];
  /** The most bytes of a request head uWS reads before its own 431 ({@link HEAD_LIMIT_ENV}); null on 20.30. */
  requestHeadLimit: number | null;
}

/** No native build loads here: the message names the runtime, each build's reason and what works. */
export class NoEngineError extends Error {
  override readonly name = 'NoEngineError';
  constructor(
    message: string,
    readonly skipped: SkippedBuild[],
  ) {
    super(message);
  }
}

/** Node's release line of each ABI of the binaries shipped (process.versions.modules). */
const NODE_LINE_OF_ABI: Record<string, string> = { '83': '14', '93': '16', '108': '18', '115': '20', '127': '22', '137': '24', '141': '25', '147': '26' };

const nodeLine = (abi: string): string => (NODE_LINE_OF_ABI[abi] ? `Node ${NODE_LINE_OF_ABI[abi]}` : `Node ABI ${abi}`);

/** An installed build: where its package lies and its version. */
interface Installed {
  build: EngineBuild;
  dir: string;
  version: string;
}

/** Finds a build's package folder without loading its entry point (resolving does not run it). */
function locate(build: EngineBuild, resolve: (id: string) => string): Installed | null {
  let entry: string;
  try {
    entry = resolve(build.package);
  } catch {
    return null;
  }
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) return { build, dir, version: (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version };
  }
  return null;
}

/** The ABIs a build has binaries for on this platform and arch, oldest first. */
function abisOf(installed: Installed, runtime: Runtime): string[] {
  const pattern = new RegExp(`^uws_${runtime.platform}_${runtime.arch}_(\\d+)\\.node$`);
  const folder = join(installed.dir, installed.build.binaries);
  const files = existsSync(folder) ? readdirSync(folder) : [];
  return files.flatMap((file) => pattern.exec(file)?.[1] ?? []).sort((a, b) => Number(a) - Number(b));
}

/** Why a binary did not load, in a line: the glibc it needs, or the loader's first line. */
function loadFailure(err: unknown, runtime: Runtime): string {
  const message = err instanceof Error ? err.message : String(err);
  const glibc = /GLIBC_([\d.]+)' not found/.exec(message);
  if (glibc) return `needs glibc ${glibc[1]} (this system has ${runtime.glibc ?? 'none'})`;
  return message.split('\n')[0];
}

/** Where a build runs: its Node lines on this platform and arch, and the glibc it needs on Linux. */
function whereItRuns(installed: Installed, runtime: Runtime): string {
  const lines = abisOf(installed, runtime).map(nodeLine);
  if (lines.length === 0) return `uWebSockets.js ${installed.version}: nothing on ${runtime.platform}-${runtime.arch}`;
  const libc = runtime.platform === 'linux' ? ` with glibc ${installed.build.glibc} or later` : '';
  return `uWebSockets.js ${installed.version}: ${lines.join(', ')} on ${runtime.platform}-${runtime.arch}${libc}`;
}

/** How {@link selectEngine} finds and loads binaries: Node's require's own, unless a test stands for another runtime. */
export interface Loader {
  resolve: (id: string) => string;
  load: (path: string) => unknown;
}

/**
 * Loads the newest build whose binary loads on `runtime`; `headLimit` is what {@link HEAD_LIMIT_ENV}
 * holds as it loads.
 * @throws NoEngineError when none loads.
 */
export function selectEngine(builds: readonly EngineBuild[], runtime: Runtime, headLimit: number, loader: Loader = { resolve: require.resolve, load: require }): { uws: Uws; info: EngineInfo } {
  const { resolve, load } = loader;
  const skipped: SkippedBuild[] = [];
  const installed: Installed[] = [];
  let chosen: { uws: Uws; info: Omit<EngineInfo, 'skipped'> } | null = null;
  for (const build of builds) {
    const found = locate(build, resolve);
    if (!found) {
      skipped.push({ version: build.package, reason: 'not installed' });
      continue;
    }
    installed.push(found);
    if (chosen) {
      skipped.push({ version: found.version, reason: `a newer build runs (${chosen.info.version})` });
      continue;
    }
    const binary = `uws_${runtime.platform}_${runtime.arch}_${runtime.abi}.node`;
    const path = join(found.dir, build.binaries, binary);
    if (!existsSync(path)) {
      const has = abisOf(found, runtime).map(nodeLine);
      const hasText = has.length ? `; it has ${has.join(', ')}` : '';
      skipped.push({ version: found.version, reason: `no binary for ${nodeLine(runtime.abi)} (ABI ${runtime.abi}) on ${runtime.platform}-${runtime.arch}${hasText}` });
      continue;
    }
    try {
      const uws = load(path) as Uws;
      const requestHeadLimit = build.headLimitEnv ? headLimit : null;
      chosen = { uws, info: { name: 'uws-native', version: found.version, package: build.package, binary, description: `uWebSockets.js ${found.version} (native ${binary})`, requestHeadLimit } };
    } catch (err) {
      skipped.push({ version: found.version, reason: loadFailure(err, runtime) });
    }
  }
  if (chosen) return { uws: chosen.uws, info: { ...chosen.info, skipped } };
  const libc = runtime.glibc ? `glibc ${runtime.glibc}` : 'no glibc';
  const works = installed.length ? installed.map((i) => `  ${whereItRuns(i, runtime)}`).join('\n') : '  (no build is installed: run npm install)';
  throw new NoEngineError(
    `no native uWebSockets.js build loads on Node ${runtime.node} (ABI ${runtime.abi}), ${runtime.platform}-${runtime.arch}, ${libc}:\n` +
      skipped.map((s) => `  uWebSockets.js ${s.version}: ${s.reason}`).join('\n') +
      `\nWhat runs:\n${works}\nRun on one of those (README.md, "Needs", has the table); there is no fallback engine.`,
    skipped,
  );
}

let loaded: { uws: Uws; info: EngineInfo } | null = null;

/**
 * Loads the engine once and reports what was loaded. The first call decides, also uWS's request-head
 * limit ({@link HEAD_LIMIT_FACTOR} x `maxHeaderSize`, unless the environment sets {@link HEAD_LIMIT_ENV}):
 * a second server in the process shares it. The variable is set only while the binary loads, so that
 * child processes (a supervisor's workers) decide for themselves.
 * @throws NoEngineError when no native build loads on this Node and libc.
 */
export function loadEngine(maxHeaderSize: number): { uws: Uws; info: EngineInfo } {
  if (loaded) return loaded;
  const given = process.env[HEAD_LIMIT_ENV];
  // uWS reads the variable with atoi: leading digits, else 0.
  const headLimit = given === undefined ? HEAD_LIMIT_FACTOR * maxHeaderSize : Number.parseInt(given, 10) || 0;
  process.env[HEAD_LIMIT_ENV] = String(headLimit);
  try {
    loaded = selectEngine(ENGINE_BUILDS, currentRuntime(), headLimit);
  } finally {
    if (given === undefined) delete process.env[HEAD_LIMIT_ENV];
    else process.env[HEAD_LIMIT_ENV] = given;
  }
  return loaded;
}

/** One line on the builds that do not run, for the start banner; null when every other build is absent. */
export function skippedLine(info: EngineInfo): string | null {
  return info.skipped.length ? info.skipped.map((s) => `uWebSockets.js ${s.version}: ${s.reason}`).join('; ') : null;
}

/** Native helpers that speed up the `ws` package (used by the swarm and the baseline server). */
export interface WsHelpers {
  /** Whether `bufferutil` (masking in C) loaded and `WS_NO_BUFFER_UTIL` does not turn it off. */
  bufferutil: boolean;
  /** One line for benchmark output. */
  description: string;
}

/** Tells whether `ws` runs with its native `bufferutil` helper. */
export function wsHelpers(): WsHelpers {
  let bufferutil = false;
  if (!process.env.WS_NO_BUFFER_UTIL) {
    try {
      require('bufferutil');
      bufferutil = Object.keys(require.cache).some((path) => /bufferutil.*\.node$/.test(path));
    } catch {
      bufferutil = false;
    }
  }
  const wsVersion = (require('ws/package.json') as { version: string }).version;
  return {
    bufferutil,
    description: `ws ${wsVersion} with bufferutil ${bufferutil ? 'native' : 'NOT loaded (JavaScript masking)'}`,
  };
}
