/**
 * README.md's fuzz run in its short form, and the flags of the long benchmarks and of `make test`, run
 * as written (see test/helpers/docs.ts). A file of their own: with the server commands in one file, the
 * file came within 3 s of the 60 s a test file may take, and passed it on a host withholding half its CPU.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { doc, docPlaces, mapped, ROOT, sh } from './helpers/docs.js';

describe('README.md: the fuzz run and the long benchmarks', () => {
  const places = docPlaces();
  const scratch = (): string => places.scratch;

  it('README: the fuzz run in its short form; the long benchmarks and make test take their flags', async () => {
    const short = doc('README.md', 'make fuzz ARGS="--inputs 5000 --seed 42 --quiet-seconds 5"');
    const fuzz = await sh(mapped(short.command.replace('--inputs 5000', '--inputs 400').replace('--quiet-seconds 5', `--quiet-seconds 2 --out ${scratch()}`), places));
    assert.match(fuzz.output, /PASS {2}every input answered as it must be: 400 inputs, 0 mismatches/);
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
});
