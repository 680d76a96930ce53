/** isJsonText must answer exactly as JSON.parse does, on chosen inputs and on many mutated ones. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isJsonText } from '../server/protocol/index.js';

const parses = (text: string): boolean => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

const valid = [
  '{"c":0,"t":1764034567123456,"p":""}',
  '0', '-0', '1.5', '-12.5e+3', '1E9', '1e-2', '123456789012345678901234567890', 'true', 'false', 'null',
  '""', '"plain"', '"esc \\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00"', '"é 😀 \u2028"', '"\ud800"',
  '[]', '{}', '[ ]', '{ }', ' \t\r\n[1, 2 ,3 ] \n', '{"a":{"b":[{"c":[]},{}]}}', '{"a" : 1 , "a" : 2}',
  '[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]', '[null,true,false,"x",-1.0e0,{"k":"v"}]',
  `${'['.repeat(5000)}${']'.repeat(5000)}`,
  // Long enough for the scanner's fast run over plain characters, with something to stop it every so often.
  JSON.stringify('plain text, then "quotes", a \\ backslash, a \n newline, a \u0001 control, é and 😀; '.repeat(2)),
  JSON.stringify({ text: 'x'.repeat(100_000), after: ['y'.repeat(40), 1] }),
];

const invalid = [
  '', ' ', 'hello', 'hello world', '{', '}', '[', ']', '{"a":1', '[1,2', '{"a":1,}', '[1,]', '[,1]', '{,}', '{"a"}',
  '{"a" 1}', '{a:1}', "{'a':1}", '{"a":1}}', '[1]]', '[1] [2]', '1 2', '01', '-', '-01', '+1', '1.', '.5', '1e', '1e+',
  '0x10', 'NaN', 'Infinity', '-Infinity', 'tru', 'truee', 'nul', 'True', 'undefined', '"unterminated', '"bad \\x escape"',
  '"\\u12"', '"\\u12G4"', '"tab\tinside"', '"nl\ninside"', '"\u0000"', '[1,2]x', '{"a":1}x', '\u00a0{}', '{}\u00a0',
  '[1 2]', '{"a":1 "b":2}', '{"a"::1}', '{:1}', '[true false]', '"\\"', `${'['.repeat(5000)}${']'.repeat(4999)}`,
];

/** A small deterministic generator, so a failure can be reproduced. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('isJsonText', () => {
  it('agrees with JSON.parse on chosen JSON and non-JSON', () => {
    for (const text of valid) assert.equal(isJsonText(text), true, `valid: ${text.slice(0, 60)}`);
    for (const text of invalid) assert.equal(isJsonText(text), false, `invalid: ${JSON.stringify(text.slice(0, 60))}`);
    for (const text of [...valid, ...invalid]) assert.equal(parses(text), isJsonText(text), `JSON.parse disagrees on the list itself: ${text.slice(0, 60)}`);
  });

  it('agrees with JSON.parse on 100,000 mutations of JSON texts', () => {
    const next = random(20261125);
    const alphabet = ' \t\n{}[]:,"\\/-+.0123456789eEtrufalsn\u0000\u001f\u00e9abcxu';
    const seeds = valid.filter((text) => text.length < 200);
    let accepted = 0;
    for (let round = 0; round < 100_000; round++) {
      let text = seeds[Math.floor(next() * seeds.length)];
      for (let edits = 1 + Math.floor(next() * 3); edits > 0; edits--) {
        const at = Math.floor(next() * (text.length + 1));
        const char = alphabet[Math.floor(next() * alphabet.length)];
        const kind = next();
        if (kind < 0.4) text = text.slice(0, at) + char + text.slice(at);
        else if (kind < 0.7) text = text.slice(0, at) + text.slice(at + 1);
        else text = text.slice(0, at) + char + text.slice(at + 1);
      }
      const expected = parses(text);
      if (expected) accepted++;
      assert.equal(isJsonText(text), expected, `mutation ${round}: ${JSON.stringify(text)}`);
    }
    // The mutations must exercise both answers, or the comparison proves little.
    assert.ok(accepted > 5_000 && accepted < 95_000, `JSON.parse accepted ${accepted} of 100,000`);
  });
});
