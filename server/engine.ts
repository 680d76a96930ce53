/**
 * Loads uWebSockets.js and tells which engine runs. The republished package quietly swaps in a slow
 * `ws`-based shim when its native binary does not load (or when UWS_USE_FALLBACK is set), so the only
 * trustworthy sign of the native engine is its `.node` binary in the require cache.
 */
import { createRequire } from 'node:module';
import { basename } from 'node:path';

const require = createRequire(import.meta.url);

/** The uWebSockets.js module, native or fallback; both speak the same API. */
export type Uws = typeof import('uWebSockets.js');

/** Which engine serves the sockets. */
export interface EngineInfo {
  /** `uws-native`: the C++ uWebSockets; `ws-fallback`: the package's JavaScript shim over `ws`. */
  name: 'uws-native' | 'ws-fallback';
  /** Version of the installed uWebSockets.js package. */
  version: string;
  /** File name of the loaded native binary; null on the fallback. */
  binary: string | null;
  /** One line for logs and benchmark output. */
  description: string;
}

let loaded: { uws: Uws; info: EngineInfo } | null = null;

/** Loads uWebSockets.js once and reports what was loaded. */
export function loadEngine(): { uws: Uws; info: EngineInfo } {
  if (loaded) return loaded;
  const uws = require('uWebSockets.js') as Uws;
  const version = (require('uWebSockets.js/package.json') as { version: string }).version;
  const binaryPath = Object.keys(require.cache).find((path) => /[\\/]uws_[^\\/]+\.node$/.test(path));
  const binary = binaryPath ? basename(binaryPath) : null;
  const name = binary ? 'uws-native' : 'ws-fallback';
  const description = binary
    ? `uWebSockets.js ${version} (native ${binary})`
    : `uWebSockets.js ${version} on its ws FALLBACK shim (${
        process.env.UWS_USE_FALLBACK ? 'UWS_USE_FALLBACK is set' : 'the native binary did not load'
      }): not fit for benchmarks`;
  loaded = { uws, info: { name, version, binary, description } };
  return loaded;
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
