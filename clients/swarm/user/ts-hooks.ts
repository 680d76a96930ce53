/**
 * Module hooks (node:module register) through which the engine and its workers import a TypeScript
 * scenario: a `.ts`, `.mts` or `.cts` file is compiled on its own by TypeScript's transpileModule, types
 * erased and not checked (run `tsc --noEmit` for that), and a relative import written `./helper.js`, as
 * TypeScript asks, finds `./helper.ts` when no `.js` is there.
 *
 * What is compiled is kept in a cache folder under the system's temporary folder, by the hash of the
 * source: the engine imports the scenario before it forks the workers, so they find every file it
 * imported there and never load TypeScript, which costs a process about 90 MB (a 300-client run over
 * 2 workers: 478 MiB with TypeScript in all 3 processes, 341 MiB in the engine's only, 209 MiB with a
 * .mjs scenario: the hooks' thread costs a worker about 20 MB).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Ts = typeof import('typescript');
type Context = { conditions?: string[]; format?: string | null; importAttributes?: Record<string, string> };
type Resolved = { url: string; format?: string | null; shortCircuit?: boolean };
type Loaded = { format: string; source?: string | ArrayBuffer | Uint8Array | null; shortCircuit?: boolean };

const TYPESCRIPT_FILE = /\.[mc]?ts$/;
/** Where compiled scenarios are kept, by the hash of their path and source. */
const CACHE_DIR = join(tmpdir(), 'uws-pubsub-bench-scenarios');
let ts: Ts | null = null;

export async function resolve(specifier: string, context: Context, nextResolve: (s: string, c: Context) => Promise<Resolved>): Promise<Resolved> {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    const relative = specifier.startsWith('./') || specifier.startsWith('../');
    if (!relative || !/\.[mc]?js$/.test(specifier) || (err as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    return nextResolve(specifier.replace(/js$/, 'ts'), context);
  }
}

export async function load(url: string, context: Context, nextLoad: (u: string, c: Context) => Promise<Loaded>): Promise<Loaded> {
  if (!url.startsWith('file:') || !TYPESCRIPT_FILE.test(new URL(url).pathname)) return nextLoad(url, context);
  const fileName = fileURLToPath(url);
  const commonjs = url.endsWith('.cts');
  const source = await readFile(fileName, 'utf8');
  const cached = join(CACHE_DIR, `${createHash('sha256').update(`${fileName}\0${commonjs}\0${source}`).digest('hex')}.js`);
  const format = commonjs ? 'commonjs' : 'module';
  try {
    return { format, source: await readFile(cached, 'utf8'), shortCircuit: true };
  } catch {
    // not compiled yet
  }
  ts ??= (await import('typescript')).default as unknown as Ts;
  const { outputText, diagnostics = [] } = ts.transpileModule(source, {
    fileName,
    reportDiagnostics: true,
    compilerOptions: { module: commonjs ? ts.ModuleKind.CommonJS : ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, inlineSourceMap: true },
  });
  // Only syntax is diagnosed here (one file, no types): code TypeScript could not read is not run.
  const [first] = diagnostics;
  if (first) {
    const at = first.file && first.start !== undefined ? first.file.getLineAndCharacterOfPosition(first.start) : null;
    throw new SyntaxError(`${fileName}${at ? `:${at.line + 1}:${at.character + 1}` : ''}: ${ts.flattenDiagnosticMessageText(first.messageText, ' ')}`);
  }
  // Written whole under another name first: a worker reading it meanwhile sees all of it or none.
  await mkdir(CACHE_DIR, { recursive: true });
  const partial = `${cached}.${process.pid}.partial`;
  await writeFile(partial, outputText);
  await rename(partial, cached);
  return { format, source: outputText, shortCircuit: true };
}
