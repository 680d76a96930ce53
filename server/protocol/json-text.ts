/**
 * Whether a string is JSON text, answered without building the value. The Redis bridge asks this of
 * every payload it receives (another program may `PUBLISH` plain text, which must reach clients as a
 * JSON string), and JSON.parse, which allocates the whole value only for it to be thrown away, was 15%
 * of a subscribing instance's CPU at 50,000 msg/s. Accepts exactly what JSON.parse accepts (RFC 8259;
 * test/json-text.test.ts checks the two agree on hand-picked and mutated inputs). Pure.
 */

const OBJECT = 1;
const ARRAY = 2;

/** True when `JSON.parse(text)` would succeed. */
export function isJsonText(text: string): boolean {
  const n = text.length;
  const open: number[] = [];
  let i = skipSpace(text, 0);
  for (;;) {
    // A value starts at i (whitespace before it already skipped).
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */) {
      i = skipSpace(text, i + 1);
      if (text.charCodeAt(i) === 0x7d /* } */) {
        i++;
      } else {
        open.push(OBJECT);
        i = skipKey(text, i);
        if (i < 0) return false;
        continue;
      }
    } else if (c === 0x5b /* [ */) {
      i = skipSpace(text, i + 1);
      if (text.charCodeAt(i) === 0x5d /* ] */) {
        i++;
      } else {
        open.push(ARRAY);
        continue;
      }
    } else if (c === 0x22 /* " */) {
      i = skipString(text, i);
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      i = skipNumber(text, i);
    } else if (c === 0x74 /* t */ && text.startsWith('true', i)) {
      i += 4;
    } else if (c === 0x66 /* f */ && text.startsWith('false', i)) {
      i += 5;
    } else if (c === 0x6e /* n */ && text.startsWith('null', i)) {
      i += 4;
    } else {
      return false;
    }
    if (i < 0) return false;
    // The value ended: a comma starts the next one, or brackets close containers.
    for (;;) {
      i = skipSpace(text, i);
      if (open.length === 0) return i === n;
      const d = text.charCodeAt(i);
      const inside = open[open.length - 1];
      if (d === 0x2c /* , */) {
        i = skipSpace(text, i + 1);
        if (inside === OBJECT) {
          i = skipKey(text, i);
          if (i < 0) return false;
        }
        break;
      }
      if ((inside === OBJECT && d === 0x7d) || (inside === ARRAY && d === 0x5d)) {
        open.pop();
        i++;
        continue;
      }
      return false;
    }
  }
}

function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/** A member's `"name" :` and the whitespace after it; -1 if that is not what starts at i. */
function skipKey(text: string, i: number): number {
  if (text.charCodeAt(i) !== 0x22) return -1;
  i = skipString(text, i);
  if (i < 0) return -1;
  i = skipSpace(text, i);
  if (text.charCodeAt(i) !== 0x3a /* : */) return -1;
  return skipSpace(text, i + 1);
}

/** A run of characters that need no look inside a string; for long strings, where it beats a loop in JS. */
const PLAIN_RUN = /[^"\\\u0000-\u001f]*/y;

/** Past the string that starts (with its quote) at i; -1 if it is not a JSON string. */
function skipString(text: string, i: number): number {
  const n = text.length;
  i++;
  for (let looked = 0; i < n; looked++) {
    if (looked === 32) {
      PLAIN_RUN.lastIndex = i;
      PLAIN_RUN.test(text);
      i = PLAIN_RUN.lastIndex;
      looked = 0;
      if (i >= n) break;
    }
    const c = text.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c < 0x20) return -1;
    if (c === 0x5c /* \ */) {
      const e = text.charCodeAt(i + 1);
      if (e === 0x75 /* u */) {
        for (let k = i + 2; k < i + 6; k++) if (!isHex(text.charCodeAt(k))) return -1;
        i += 6;
        continue;
      }
      // " \ / b f n r t
      if (e !== 0x22 && e !== 0x5c && e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) return -1;
      i += 2;
      continue;
    }
    i++;
  }
  return -1;
}

/** Past the number that starts at i; -1 if it is not a JSON number. */
function skipNumber(text: string, i: number): number {
  if (text.charCodeAt(i) === 0x2d) i++;
  const first = text.charCodeAt(i);
  if (first === 0x30) i++;
  else if (first >= 0x31 && first <= 0x39) i = skipDigits(text, i + 1);
  else return -1;
  if (text.charCodeAt(i) === 0x2e /* . */) {
    if (!isDigit(text.charCodeAt(i + 1))) return -1;
    i = skipDigits(text, i + 2);
  }
  const e = text.charCodeAt(i);
  if (e === 0x65 || e === 0x45 /* e E */) {
    i++;
    const sign = text.charCodeAt(i);
    if (sign === 0x2b || sign === 0x2d) i++;
    if (!isDigit(text.charCodeAt(i))) return -1;
    i = skipDigits(text, i + 1);
  }
  return i;
}

function skipDigits(text: string, i: number): number {
  while (isDigit(text.charCodeAt(i))) i++;
  return i;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/**
 * Whether JSON text nests arrays and objects more than `max` deep (brackets inside strings do not
 * count). The codec asks this before it parses a frame: a value nested a few thousand deep parses
 * fine but overflows the stack of the recursive JSON.stringify that re-encodes it, and an 8 KB frame
 * can nest 4,000 deep. Linear in the text, no allocation. Pure.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  const n = text.length;
  let depth = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > max) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    } else if (c === 0x22 /* " */) {
      // Past the string: an escaped character is skipped with its backslash.
      for (i++; i < n; i++) {
        const s = text.charCodeAt(i);
        if (s === 0x5c) i++;
        else if (s === 0x22) break;
      }
    }
  }
  return false;
}
