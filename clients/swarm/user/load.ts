/**
 * Loads a user scenario (`--scenario ./my-flow.ts`): a JavaScript module as Node imports it, a
 * TypeScript one through ts-hooks.ts when the `typescript` package can be found (the full language;
 * types are erased, not checked), else through Node's own type stripping where Node has it (22.18 and
 * later: erasable syntax only). The module's default export, or its export `scenario`, is the function.
 */
import { existsSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { UserScenario } from '../scenario-api.js';

/** A scenario file or a --data file that cannot be used: the run does not start (exit 2 on the command line). */
export class ScenarioFileError extends Error {}

const TYPESCRIPT_FILE = /\.[mc]?ts$/;
let hooksRegistered = false;

export async function loadUserScenario(path: string): Promise<UserScenario> {
  if (!existsSync(path)) throw new ScenarioFileError(`--scenario ${path}: no such file`);
  if (TYPESCRIPT_FILE.test(path)) registerTypeScript(path);
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    throw new ScenarioFileError(`--scenario ${path}: cannot load it: ${(err as Error).message}`);
  }
  const scenario = module.default ?? module.scenario;
  if (typeof scenario !== 'function') {
    throw new ScenarioFileError(`--scenario ${path}: must export the function each client runs, as its default export or as \`scenario\` (its exports: ${Object.keys(module).join(', ') || 'none'})`);
  }
  return scenario as UserScenario;
}

function registerTypeScript(path: string): void {
  if (hooksRegistered) return;
  if (canResolve('typescript')) {
    register(new URL('./ts-hooks.js', import.meta.url));
    hooksRegistered = true;
    return;
  }
  if ((process.features as { typescript?: unknown }).typescript) return; // Node strips the types itself
  throw new ScenarioFileError(`--scenario ${path}: a TypeScript scenario needs the typescript package (npm install typescript) or Node 22.18 or later; or compile it to .js`);
}

/** Whether `name` can be imported from here (the hooks import it from beside this file). */
function canResolve(name: string): boolean {
  try {
    createRequire(import.meta.url).resolve(name);
    return true;
  } catch {
    return false;
  }
}
