/** Which page origins may open a WebSocket (server/origins.ts), as `--allowed-origins` reads them. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isOriginPattern, originAllowed } from '../server/origins.js';
import { validateOptions } from '../server/options.js';

describe('originAllowed', () => {
  it('takes the server\'s own origin: the page\'s host and port are the Host the request was sent to', () => {
    assert.equal(originAllowed('http://127.0.0.1:9000', '127.0.0.1:9000', []), true);
    assert.equal(originAllowed('https://App.Example.com', 'app.example.com:443', []), true, 'default port and case do not matter');
    assert.equal(originAllowed('http://127.0.0.1:9001', '127.0.0.1:9000', []), false, 'another port is another origin');
    assert.equal(originAllowed('https://evil.example', 'app.example.com', []), false);
    assert.equal(originAllowed('null', 'app.example.com', []), false, 'a sandboxed page or a file');
    assert.equal(originAllowed('not a url', 'app.example.com', []), false);
  });

  it('takes listed origins, hosts and *. patterns, and * for any', () => {
    const list = ['https://app.example.com', 'http://127.0.0.1:8080', 'https://*.example.org', '*.example.net', 'plain.example.io'];
    const cases: [string, boolean][] = [
      ['https://app.example.com', true],
      ['http://app.example.com', false],
      ['https://app.example.com:8443', false],
      ['http://127.0.0.1:8080', true],
      ['https://a.example.org', true],
      ['https://a.b.example.org', true],
      ['https://example.org', false],
      ['http://a.example.org', false],
      ['https://evilexample.org', false],
      ['http://x.example.net', true],
      ['https://x.example.net', true],
      ['http://plain.example.io', true],
      ['https://plain.example.io.evil.com', false],
    ];
    for (const [origin, expected] of cases) assert.equal(originAllowed(origin, 'server.test', list), expected, origin);
    assert.equal(originAllowed('https://anything.test', 'server.test', ['*']), true);
    assert.equal(originAllowed('null', 'server.test', ['*']), true);
  });

  it('refuses a malformed entry of --allowed-origins at start, naming the flag', () => {
    for (const good of ['*', 'https://a.example.com', '*.example.com', 'https://*.example.com:8443', 'localhost']) assert.equal(isOriginPattern(good), true, good);
    for (const bad of ['https://a.example.com/path', 'ftp://x.example', '*example.com', 'https://*', 'a b', 'https://x.example:99999']) assert.equal(isOriginPattern(bad), false, bad);
    assert.throws(() => validateOptions({ allowedOrigins: ['https://ok.example', 'https://bad.example/'] }, 'flags'), /^RangeError: --allowed-origins must be origins/);
  });
});
