/**
 * The fuzz suite's short form (`make fuzz` runs 100,000 inputs and compares latency): seeded inputs at
 * the JSON, WebSocket-frame and HTTP levels against a server process while other clients publish and
 * receive. Every input gets the answer it must get, the server stays up and healthy, memory and open
 * files come back, the others lose nothing, and each counter of /stats grew by exactly what was sent of
 * its kind. FUZZ_SEED and FUZZ_INPUTS replay or lengthen a run.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attack } from '../clients/fuzz/attack.js';
import { CHECK_FILES } from '../clients/host/proc.js';
import { readUwsTraits, runFuzz } from '../clients/fuzz/runner.js';
import { spawnServer } from './helpers/process.js';

const MIB = 1024 * 1024;
const seed = Number(process.env.FUZZ_SEED ?? 20261130);
const inputs = Number(process.env.FUZZ_INPUTS ?? 5000);

describe('fuzz (short)', () => {
  it(`${inputs} seeded inputs (seed ${seed}) leave the server up, correct and unchanged for others`, async (t) => {
    const server = await spawnServer(['--publish-key', 'fuzz']);
    try {
      const uws = await readUwsTraits(server.port);
      const result = await attack(server.pid, server.port, () =>
        runFuzz({
          port: server.port,
          inputs,
          seed,
          limits: { maxPayload: 65_536, maxJsonDepth: 64, maxHeaderSize: 8192, publishKey: 'fuzz', uws },
          sourceAddresses: ['127.0.0.2', '127.0.0.3', '127.0.0.4'],
        }),
      );
      const { fuzz, bystanders } = result;
      t.diagnostic(`${fuzz.inputs} inputs in ${Math.round(fuzz.durationMs)} ms: ${JSON.stringify(fuzz.byLevel)}; bystanders p99 ${bystanders.p99Ms.toFixed(2)} ms`);
      t.diagnostic(`RSS ${(result.rssBefore / MIB).toFixed(1)} -> ${(result.rssAfter / MIB).toFixed(1)} MiB, open files ${result.filesBefore} -> ${result.filesAfter}`);
      assert.equal(fuzz.inputs, inputs);
      assert.deepEqual(fuzz.mismatches.slice(0, 5), [], `${fuzz.mismatches.length} inputs got another answer`);
      assert.ok(fuzz.byName['json:too-deep'] > 0 && fuzz.byName['frame:invalid-utf8'] > 0 && fuzz.byName['http:malformed'] > 0, 'every level ran');
      assert.ok(result.alive);
      assert.equal(result.healthStatus, 200);
      assert.deepEqual(result.counterDifferences, []);
      assert.equal(bystanders.missing, 0, 'the other clients lost nothing');
      assert.equal(bystanders.acked, bystanders.sent);
      assert.ok(result.filesAfter <= result.filesBefore + CHECK_FILES, `open files back (${result.filesBefore} -> ${result.filesAfter})`);
      assert.ok(result.rssAfter - result.rssBefore < 64 * MIB, 'RSS near where it started');
    } finally {
      await server.kill();
    }
  });
});
