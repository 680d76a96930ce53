/**
 * Every command of README.md and docs/ is run by a docs test: each must be written out, quoted, as the
 * document has it, in one of test/docs-*.test.ts, whose `doc()` calls fail when the document no longer
 * has it.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ALL, ROOT } from './helpers/docs.js';

describe('the docs tests', () => {
  it('take every command of README.md and docs/', () => {
    const dir = join(ROOT, 'test');
    const sources = readdirSync(dir)
      .filter((name) => /^docs-.*\.test\.ts$/.test(name))
      .map((name) => readFileSync(join(dir, name), 'utf8'));
    assert.ok(sources.length >= 3, 'the docs tests are found');
    assert.ok(ALL.length >= 40, `the commands are found (${ALL.length})`);
    const quoted = (command: string): string[] => [`'${command}'`, `\`${command}\``];
    const missed = ALL.filter((c) => !sources.some((source) => quoted(c.command).some((q) => source.includes(q))));
    assert.deepEqual(missed.map((c) => `${c.file}: ${c.command}`), []);
  });
});
