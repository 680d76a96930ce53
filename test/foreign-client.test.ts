/** A client written by someone else (Python's websockets), speaking only the wire contract. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startServer } from './helpers/server.js';
import { PYTHON } from './helpers/services.js';

// The script is not compiled: read it from the source tree next to dist/.
const SCRIPT = fileURLToPath(new URL('../../test/foreign/client.py', import.meta.url));
const SCRIPT_V2 = fileURLToPath(new URL('../../test/foreign/client_v2.py', import.meta.url));

describe('a foreign client', () => {
  it('subscribes, publishes, gets every error code, runs the slow test and the echo sequence', async () => {
    assert.ok(existsSync(PYTHON), `${PYTHON} is required by this test: apt-get install python3 python3-websockets, or set TEST_PYTHON`);
    const s = await startServer();
    try {
      const { stdout } = await promisify(execFile)(PYTHON, [SCRIPT, s.ws], { timeout: 20_000 });
      assert.match(stdout, /pubsub ok\nerrors ok\nslow ok [\d.]+ s\necho ok/);
    } finally {
      await s.close();
    }
  });
});

describe('a foreign client of version 2', () => {
  it('written from docs/protocol.md alone: tokens and refusals, user channels, refresh, history and recovery, presence', async () => {
    assert.ok(existsSync(PYTHON), `${PYTHON} is required by this test: apt-get install python3 python3-websockets, or set TEST_PYTHON`);
    const secret = 'a-secret-of-at-least-32-bytes-for-hs256';
    const s = await startServer({ jwtSecret: secret, publishKey: 'pk', history: 100, presence: true });
    try {
      const { stdout } = await promisify(execFile)(PYTHON, [SCRIPT_V2, s.ws, secret, 'pk'], { timeout: 20_000 });
      assert.match(stdout, /identity ok\nchannels ok\nhistory ok\npresence ok/);
    } finally {
      await s.close();
    }
  });
});
