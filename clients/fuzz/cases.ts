/**
 * The fuzzer's inputs, each with the answer the server must give, at three levels:
 * - `json`: text frames on an open `/pubsub` connection (wrong types, deep nesting, huge numbers, long
 *   strings, unknown actions, bad channels), answered with an error frame of a known code or an ack;
 * - `frame`: bytes on a fresh WebSocket over a raw socket (invalid UTF-8, fragments, control frames over
 *   125 bytes, reserved opcodes and RSV bits, unmasked and truncated frames, bad close codes);
 * - `http`: requests on a fresh TCP connection (malformed lines, upgrade edge cases, huge headers and
 *   URLs, bad bodies, slow senders), answered with a status or, where uWS 20.30 decides, not at all.
 * What the server decides is ours; what uWS decides is what the build under test was seen to do
 * ({@link UwsTraits}; docs/protocol.md, deviations), so a change in uWS shows up as a mismatch. Pure: a
 * seed and the limits give the same cases.
 */
import { isJsonText, nestsDeeperThan } from '../../server/protocol/json-text.js';
import type { Random } from './random.js';
import { frame, upgradeRequest } from './wire.js';

/** The limits of the server under test that the expectations depend on. */
export interface FuzzLimits {
  maxPayload: number;
  maxJsonDepth: number;
  maxHeaderSize: number;
  publishKey: string;
  /** What its uWS build decides for itself ({@link uwsTraits} of its /stats `engine`). */
  uws: UwsTraits;
}

/** What the uWS build under test decides for itself before any handler of the server runs. */
export interface UwsTraits {
  /**
   * 20.57: the longest request head uWS reads; a longer one gets uWS's own 431, counted nowhere.
   * null (20.30): uWS reads a head of any size that comes in one read, and may drop one over
   * SPLIT_HEAD_LIMIT that comes in several, unanswered.
   */
  headLimit: number | null;
  /**
   * HTTP that uWS cannot parse (a bad request line, LF line ends, HTTP/1.0, no Host, too many
   * headers): 20.57 answers 400, 431 or 505 (or nothing, for a request line it is still waiting to
   * see end); 20.30 never answers.
   */
  answersMalformed: boolean;
}

/** The traits of the build a server's /stats `engine` names (docs/protocol.md, Deviations). */
export function uwsTraits(engine: { version: string; request_head_limit: number | null }): UwsTraits {
  return { headLimit: engine.request_head_limit, answersMalformed: !engine.version.startsWith('20.30.') };
}

/** How the server ends a connection the client did not close cleanly, as `/stats` `closes` counts it. */
export type CloseKind = 'abnormal' | 'invalid_utf8' | 'normal' | 'too_large';

export type Expect =
  /** json: an error frame with this code; the connection stays. */
  | { kind: 'error'; code: string }
  /** json: this event answers. */
  | { kind: 'event'; event: string }
  /** frame: the server ends the connection, counted as `close`. */
  | { kind: 'closed'; close: CloseKind }
  /** frame: the server answers with a frame of this opcode (and, for text, this event); then a clean close. */
  | { kind: 'reply'; opcode: number; event?: string; code?: string }
  /** frame: uWS ignores it and waits; the fuzzer drops the connection (counted abnormal). */
  | { kind: 'silent' }
  /**
   * http: this status, counted as `error` in http_errors or as `refused` in refused. With
   * `orUnanswered`, no answer is right too: a head over SPLIT_HEAD_LIMIT that the kernel happens to
   * deliver in two reads is dropped by uWS.
   */
  | { kind: 'status'; status: number; error?: string; refused?: string; orUnanswered?: boolean }
  /** http: uWS 20.30 answers nothing (and closes by its own timeout); the fuzzer drops the connection. */
  | { kind: 'unanswered' }
  /** http: uWS 20.57 answers by itself with one of these statuses, or not at all; the server counts nothing. */
  | { kind: 'uws'; statuses: number[] };

export interface FuzzCase {
  level: 'json' | 'frame' | 'http';
  /** The generator's name, for reports. */
  name: string;
  /** json: the text (or bytes with `binary`); frame: bytes after the welcome; http: the request's pieces. */
  data: string | Buffer | Buffer[];
  binary?: boolean;
  /** http: milliseconds between the pieces (a slow sender). */
  pauseMs?: number;
  expect: Expect;
}

const ACTIONS = ['subscribe', 'unsubscribe', 'publish', 'ping', 'slow'];
/** Every action the server knows (version 2 included): a random name among them is not unknown. */
const KNOWN_ACTIONS = [...ACTIONS, 'refresh', 'rpc', 'presence', 'history'];
const CHANNEL_CHARS = 'ABCXYZabcxyz0189_-.:@';
const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/**
 * uWS 20.30 takes a request head of any size that comes in one read, but may drop one of more than
 * this that comes in several (seen with slow senders, and now and then when the kernel splits a large
 * write), without an answer: its buffer for a head split across reads.
 */
const SPLIT_HEAD_LIMIT = 4096;

/** A broadcast channel from a small set, so no connection reaches the subscription limit. */
const fuzzChannel = (r: Random): string => `fuzz-${r.int(0, 49)}`;

/** Any JSON value, at most `depth` deep: huge and odd numbers, long and unicode strings, nesting. */
function value(r: Random, depth: number): unknown {
  const roll = r.int(0, depth > 0 ? 9 : 6);
  switch (roll) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick([0, -0, 1e308, -1e308, 5e-324, 2 ** 53 + 1, -1, 3.14159, r.int(-1e9, 1e9)]);
    case 3:
      return r.text(r.int(0, 40));
    case 4:
      return r.text(r.int(0, 2000), 'aé€😀"\\\n\t\u0000 {}[]');
    case 5:
      return r.text(r.int(1, 8), 'abc');
    case 6:
      return '';
    case 7:
    case 8:
      return Array.from({ length: r.int(0, 5) }, () => value(r, depth - 1));
    default:
      return Object.fromEntries(Array.from({ length: r.int(0, 5) }, () => [r.text(r.int(0, 8)), value(r, depth - 1)]));
  }
}

const id = (r: Random): string | number => (r.chance(0.5) ? r.int(0, 1e6) : r.text(r.int(1, 12)));
const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

function badChannel(r: Random): string {
  return r.pick([
    '',
    r.text(201, CHANNEL_CHARS),
    `a ${r.text(3)}`,
    `a/${r.text(3)}`,
    `é${r.text(2)}`,
    `#${r.text(2)}`,
    `user:${r.text(4)}`,
    'session:',
    `user::${r.text(3)}`,
    `session:${r.text(4)}:`,
  ]);
}

function wrongType(r: Random): unknown {
  return r.pick([null, true, 1.5, [], {}, [1], { a: 1 }]);
}

/** One json-level case. */
export function jsonCase(r: Random, limits: FuzzLimits): FuzzCase {
  const make = (name: string, frameValue: unknown, expect: Expect): FuzzCase => ({ level: 'json', name, data: JSON.stringify(frameValue), expect });
  switch (r.int(0, 16)) {
    case 0:
      return make('ping', { action: 'ping', id: id(r) }, { kind: 'event', event: 'pong' });
    case 1:
      return make('subscribe', { action: 'subscribe', payload: { channel: fuzzChannel(r) }, id: id(r) }, { kind: 'event', event: 'subscribed' });
    case 2:
      return make('unsubscribe', { action: 'unsubscribe', payload: { channel: fuzzChannel(r) }, id: id(r) }, { kind: 'event', event: 'unsubscribed' });
    case 3: {
      const text = JSON.stringify({ action: 'publish', payload: { channel: fuzzChannel(r), message: value(r, 6) }, id: id(r) });
      // Bigger than the frame limit or deeper than allowed is another case's business.
      if (text.length * 3 > limits.maxPayload || nestsDeeperThan(text, limits.maxJsonDepth)) return jsonCase(r, limits);
      return { level: 'json', name: 'publish', data: text, expect: { kind: 'event', event: 'published' } };
    }
    case 4: {
      const whole = JSON.stringify({ action: r.pick(ACTIONS), payload: { channel: fuzzChannel(r), ms: 5 }, id: id(r) });
      // A strict prefix of an object's text never parses: its closing brace is missing.
      return { level: 'json', name: 'truncated', data: whole.slice(0, r.int(0, whole.length - 1)), expect: { kind: 'error', code: 'bad_json' } };
    }
    case 5:
      return { level: 'json', name: 'not-an-object', data: JSON.stringify(r.pick([[1, 2], 'text', 42, null, true, []])), expect: { kind: 'error', code: 'bad_json' } };
    case 6: {
      const text = `${r.pick(['x', '{', '}', '\'', 'undefined', '{a:1}'])}${r.text(r.int(0, 30), 'ab{}[]:,"\'\\ ')}`;
      if (isJsonText(text)) return jsonCase(r, limits); // `{` + `}` is an object: another case's business
      return { level: 'json', name: 'garbage', data: text, expect: { kind: 'error', code: 'bad_json' } };
    }
    case 7:
      return make('bad-id', { action: 'ping', id: r.pick([true, [], {}, [1], { x: 1 }]) }, { kind: 'error', code: 'bad_request' });
    case 8:
      return make('bad-action', { action: wrongType(r), id: id(r) }, { kind: 'error', code: 'bad_request' });
    case 9: {
      const action = r.pick(['subscribe', 'unsubscribe', 'publish']);
      const payload = r.pick([undefined, null, 'news', [], { channel: wrongType(r) }]);
      return make('bad-payload', { action, payload, id: id(r) }, { kind: 'error', code: 'bad_request' });
    }
    case 10:
      return make('no-message', { action: 'publish', payload: { channel: fuzzChannel(r) }, id: id(r) }, { kind: 'error', code: 'bad_request' });
    case 11:
      return make('bad-slow', { action: 'slow', payload: { ms: r.pick([0, -1, 1.5, 60_001, '5', null, 1e309]) }, id: id(r) }, { kind: 'error', code: 'bad_request' });
    case 12: {
      const action = r.text(r.int(0, 60));
      if (KNOWN_ACTIONS.includes(action)) return jsonCase(r, limits);
      return make('unknown-action', { action, id: id(r) }, { kind: 'error', code: 'unknown_action' });
    }
    case 13:
      return make('bad-channel', { action: r.pick(['subscribe', 'unsubscribe', 'publish']), payload: { channel: badChannel(r), message: 1 }, id: id(r) }, { kind: 'error', code: 'bad_channel' });
    case 14: {
      const channel = r.pick([`user:${r.text(5)}:inbox`, `session:${r.text(8)}:chat`]);
      return make('forbidden', { action: r.pick(['subscribe', 'publish']), payload: { channel, message: 1 }, id: id(r) }, { kind: 'error', code: 'forbidden' });
    }
    case 15: {
      const depth = r.int(limits.maxJsonDepth + 1, Math.min(limits.maxJsonDepth + 5000, Math.floor(limits.maxPayload / 2) - 100));
      const where = r.int(0, 1);
      const text = where === 0
        ? `{"action":"publish","payload":{"channel":"fuzz-1","message":${nested(depth)}},"id":1}`
        : `{"action":"ping","extra":${nested(depth)}}`;
      return { level: 'json', name: 'too-deep', data: text, expect: { kind: 'error', code: 'too_deep' } };
    }
    default:
      return { level: 'json', name: 'binary', data: r.bytes(r.int(0, 100)), binary: true, expect: { kind: 'error', code: 'binary_not_supported' } };
  }
}

/** Bytes that are not UTF-8 (a 0xff can appear in no UTF-8 text). */
function notUtf8(r: Random): Buffer {
  const bytes = r.bytes(r.int(0, 40));
  return Buffer.concat([bytes, Buffer.from([0xff]), r.bytes(r.int(0, 10))]);
}

const PING = Buffer.from('{"action":"ping","id":"f"}');

/** One frame-level case: the bytes sent after the welcome. */
export function frameCase(r: Random, limits: FuzzLimits): FuzzCase {
  const make = (name: string, data: Buffer, expect: Expect): FuzzCase => ({ level: 'frame', name, data, expect });
  switch (r.int(0, 14)) {
    case 0:
      return make('invalid-utf8', frame(0x1, notUtf8(r)), { kind: 'closed', close: 'invalid_utf8' });
    case 1:
      return make('control-over-125', frame(r.pick([0x9, 0xa, 0x8]), r.bytes(r.int(126, 1000))), { kind: 'closed', close: 'abnormal' });
    case 2:
      return make('reserved-opcode', frame(r.pick([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), r.bytes(r.int(0, 50))), { kind: 'closed', close: 'abnormal' });
    case 3:
      return make('rsv-bits', frame(0x1, PING, { rsv: r.int(1, 7) }), { kind: 'closed', close: 'abnormal' });
    case 4:
      return make('continuation-first', frame(0x0, r.bytes(r.int(0, 20))), { kind: 'closed', close: 'abnormal' });
    case 5:
      return make('fragmented-control', frame(0x9, r.bytes(r.int(0, 20)), { fin: false }), { kind: 'closed', close: 'abnormal' });
    case 6:
      return make('new-message-mid-fragment', Buffer.concat([frame(0x1, Buffer.from('{"a'), { fin: false }), frame(0x1, PING)]), { kind: 'closed', close: 'abnormal' });
    case 7: {
      const code = r.pick([0, 1, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]);
      return make('bad-close-code', frame(0x8, Buffer.from([code >> 8, code & 0xff])), { kind: 'closed', close: 'abnormal' });
    }
    case 8: {
      // A valid message in 2 to 5 fragments: answered as a whole.
      const cuts = Array.from({ length: r.int(1, 4) }, () => r.int(1, PING.length - 1)).sort((a, b) => a - b);
      const pieces = [0, ...cuts, PING.length].map((end, i, all) => PING.subarray(all[i - 1] ?? 0, end)).slice(1);
      const frames = pieces.map((piece, i) => frame(i === 0 ? 0x1 : 0x0, piece, { fin: i === pieces.length - 1 }));
      return make('fragmented', Buffer.concat(frames), { kind: 'reply', opcode: 0x1, event: 'pong' });
    }
    case 9:
      return make('ping', frame(0x9, r.bytes(r.int(0, 125))), { kind: 'reply', opcode: 0xa });
    case 10:
      return make('over-limit', frame(0x1, Buffer.alloc(r.int(limits.maxPayload + 1, limits.maxPayload * 4), 0x20)), { kind: 'closed', close: 'too_large' });
    case 11:
      return make('over-read-limit', frame(0x1, Buffer.alloc(limits.maxPayload * 4 + r.int(1, 1000), 0x20)), { kind: 'closed', close: 'too_large' });
    case 12:
      return make('unmasked', frame(0x1, PING, { mask: false }), { kind: 'silent' });
    case 13: {
      const whole = frame(0x1, Buffer.alloc(r.int(10, 300), 0x20));
      return make('truncated', whole.subarray(0, r.int(1, whole.length - 1)), { kind: 'silent' });
    }
    default:
      return make('binary', frame(0x2, r.bytes(r.int(0, 200))), { kind: 'reply', opcode: 0x1, event: 'error', code: 'binary_not_supported' });
  }
}

const lines = (...parts: string[]): string => parts.join('\r\n');

/** One HTTP-level case. */
export function httpCase(r: Random, limits: FuzzLimits): FuzzCase {
  const post = (body: string, auth = `Bearer ${limits.publishKey}`): string =>
    lines('POST /publish HTTP/1.1', 'Host: x', `Authorization: ${auth}`, `Content-Length: ${Buffer.byteLength(body)}`, '', body);
  const make = (name: string, request: string | Buffer, expect: Expect): FuzzCase => {
    const bytes = Buffer.isBuffer(request) ? request : Buffer.from(request);
    const head = bytes.indexOf('\r\n\r\n') + 4;
    const { headLimit } = limits.uws;
    if (headLimit !== null && head > headLimit) expect = { kind: 'status', status: 431 };
    else if (headLimit === null && expect.kind === 'status' && head > SPLIT_HEAD_LIMIT) expect = { ...expect, orUnanswered: true };
    // One request in three comes from a slow sender: in up to 6 pieces, a few ms apart.
    if (!r.chance(1 / 3) || bytes.length < 2) return { level: 'http', name, data: [bytes], expect };
    const cuts = [...new Set(Array.from({ length: r.int(1, 5) }, () => r.int(1, bytes.length - 1)))].sort((a, b) => a - b);
    const pieces = [0, ...cuts, bytes.length].map((end, i, all) => bytes.subarray(all[i - 1] ?? 0, end)).slice(1);
    return { level: 'http', name: `${name}/slow`, data: pieces, pauseMs: r.int(1, 10), expect };
  };
  switch (r.int(0, 17)) {
    case 0:
      return make('health', lines('GET /health HTTP/1.1', 'Host: x', '', ''), { kind: 'status', status: 200 });
    case 1:
      return make('not-found', lines(`GET /${r.text(r.int(1, 50))} HTTP/1.1`, 'Host: x', '', ''), { kind: 'status', status: 404, error: 'not_found' });
    case 2:
      return make('wrong-method', lines(`${r.pick(['POST', 'PUT', 'DELETE'])} /health HTTP/1.1`, 'Host: x', 'Content-Length: 0', '', ''), { kind: 'status', status: 405, error: 'method_not_allowed' });
    case 3:
      return make('plain-get-ws', lines(`GET ${r.pick(['/pubsub', '/echo'])} HTTP/1.1`, 'Host: x', '', ''), { kind: 'status', status: 426, error: 'upgrade_required' });
    case 4:
      return make('huge-url', lines(`GET /${r.text(r.int(2000, 60_000))} HTTP/1.1`, 'Host: x', '', ''), { kind: 'status', status: 404, error: 'not_found' });
    case 5:
      return make('huge-header', lines('GET /health HTTP/1.1', 'Host: x', `X-Filler: ${r.text(r.int(2000, 60_000))}`, '', ''), { kind: 'status', status: 200 });
    case 6:
      return make('bad-key', post('{"channel":"a","message":1}', `Bearer ${r.text(8)}`), { kind: 'status', status: 401, error: 'unauthorized' });
    case 7:
      return make('body-not-json', post(`{${r.text(r.int(0, 30))}`), { kind: 'status', status: 400, error: 'bad_json' });
    case 8:
      return make('body-no-channel', post(JSON.stringify({ message: value(r, 3) })), { kind: 'status', status: 400, error: 'bad_request' });
    case 9:
      return make('body-bad-channel', post(JSON.stringify({ channel: badChannel(r), message: 1 })), { kind: 'status', status: 400, error: 'bad_channel' });
    case 10:
      return make('body-too-deep', post(`{"channel":"a","message":${nested(r.int(limits.maxJsonDepth, 3000))}}`), { kind: 'status', status: 400, error: 'too_deep' });
    case 11:
      return make('body-too-large', post(`"${'x'.repeat(limits.maxPayload + r.int(0, 100_000))}"`), { kind: 'status', status: 413, error: 'too_large' });
    case 12:
      return make('publish', post(JSON.stringify({ channel: fuzzChannel(r), message: value(r, 3) })), { kind: 'status', status: 202 });
    case 13: {
      const version = r.pick(['8', '0', '14', 'abc', '']);
      return make('upgrade-version', upgradeRequest(r.pick(['/pubsub', '/echo']), [], version), { kind: 'status', status: 426, refused: 'handshake' });
    }
    case 14:
      return make('upgrade-bad-key', upgradeRequest('/pubsub').replace('dGhlIHNhbXBsZSBub25jZQ==', `${r.text(22, BASE64)}!!`), { kind: 'status', status: 400, refused: 'handshake' });
    case 15:
      return make('upgrade-huge-header', upgradeRequest('/pubsub', [`X-Filler: ${r.text(limits.maxHeaderSize + r.int(0, 50_000))}`]), { kind: 'status', status: 431, refused: 'header_too_large' });
    case 16:
      return make('upgrade-wrong-path', upgradeRequest(`/${r.text(r.int(1, 20))}`), { kind: 'status', status: 404, error: 'not_found' });
    default: {
      // Not HTTP as uWS reads it: 20.30 answers nothing at all, leaving the connection to its own
      // timeout; 20.57 answers by itself.
      const request = r.pick([
        () => `${r.text(r.int(1, 40), 'ABC xyz/')}\r\n\r\n`,
        () => 'GET /health\r\n\r\n',
        () => 'GET /health HTTP/1.1\nHost: x\n\n',
        () => lines('GET /health HTTP/1.1', ...Array.from({ length: r.int(60, 300) }, (_, i) => `X-${i}: v`), '', ''),
      ])();
      return make('malformed', request, limits.uws.answersMalformed ? { kind: 'uws', statuses: [400, 431, 505] } : { kind: 'unanswered' });
    }
  }
}

/** The case generator for a mix: `json` share of json cases, `frame` share of frame cases, the rest HTTP. */
export function nextCase(r: Random, limits: FuzzLimits, mix = { json: 0.6, frame: 0.25 }): FuzzCase {
  const roll = r.next();
  if (roll < mix.json) return jsonCase(r, limits);
  if (roll < mix.json + mix.frame) return frameCase(r, limits);
  return httpCase(r, limits);
}
