/**
 * Client frames on `/pubsub`: text in, a typed action or a coded error out. Pure: it never sends.
 */
import { parseChannel, type Facility } from './channels.js';
import { nestsDeeperThan } from './json-text.js';

/** Longest `slow` request, in milliseconds. */
export const MAX_SLOW_MS = 60_000;

/** Deepest nesting of arrays and objects a frame may have, unless `--max-json-depth` says otherwise. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

/**
 * The stable error codes of protocol.md, "Errors", plus the extensions of docs/protocol.md:
 * `too_deep` (JSON nested past `--max-json-depth`), `shutting_down` (a publish or slow request that
 * arrived after shutdown began: it was not taken), `slow_io_failed` (the slow backend failed) and
 * `disabled` (an action this server does not serve: `slow` without `--slow-io`) and `busy` (the
 * connection's requests in progress are at their bound: this one was not taken). In a
 * fixed order (for counters).
 */
export const ERROR_CODES = [
  'bad_json',
  'bad_request',
  'unknown_action',
  'bad_channel',
  'forbidden',
  'too_many_subscriptions',
  'rate_limited',
  'binary_not_supported',
  'too_deep',
  'shutting_down',
  'slow_io_failed',
  'unknown_method',
  'rpc_failed',
  'hook_failed',
  'presence_failed',
  'history_failed',
  'disabled',
  'busy',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Where a message stands in its channel's history: its offset, in the history's epoch. */
export interface Position {
  offset: number;
  epoch: string;
}

/** A request id as the client sent it; null when it sent none. */
export type RequestId = string | number | null;

/** A channel name together with what it means. */
export interface ChannelRef {
  name: string;
  facility: Facility;
}

/** A channel name with what it means; null outside the grammar (channels.ts, parseChannel). */
export function channelRef(name: string): ChannelRef | null {
  const facility = parseChannel(name);
  return facility && { name, facility };
}

/** A well-formed client request. `messageJson` is the published message re-encoded as JSON text. */
export type ClientAction =
  | { action: 'subscribe'; channel: ChannelRef; joinLeave: boolean; since?: Position; id: RequestId }
  | { action: 'presence'; channel: ChannelRef; id: RequestId }
  | { action: 'history'; channel: ChannelRef; limit: number | null; id: RequestId }
  | { action: 'unsubscribe'; channel: ChannelRef; id: RequestId }
  | { action: 'publish'; channel: ChannelRef; messageJson: string; id: RequestId }
  | { action: 'ping'; id: RequestId }
  | { action: 'slow'; ms: number; id: RequestId }
  | { action: 'refresh'; token: string; id: RequestId }
  | { action: 'rpc'; method: string; params: unknown; id: RequestId };

/** A frame that could not be understood, with the code and text of the error frame to answer it. */
export interface FrameError {
  action: 'error';
  code: ErrorCode;
  message: string;
  id: RequestId;
}

/** Builds a {@link FrameError}. */
export function frameError(code: ErrorCode, message: string, id: RequestId = null): FrameError {
  return { action: 'error', code, message, id };
}

/**
 * Parses one text frame. Never throws: a bad frame becomes a {@link FrameError}. A frame nested more
 * than `maxDepth` deep is refused before it is parsed, so re-encoding the message stays within the stack.
 */
export function parseClientFrame(text: string, maxDepth = DEFAULT_MAX_JSON_DEPTH): ClientAction | FrameError {
  if (nestsDeeperThan(text, maxDepth)) return frameError('too_deep', `frame nests arrays and objects more than ${maxDepth} deep`);
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return frameError('bad_json', 'frame is not valid JSON');
  }
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
    return frameError('bad_json', 'frame is not a JSON object');
  }
  const fields = frame as Record<string, unknown>;
  const id = fields.id;
  if (id !== undefined && id !== null && typeof id !== 'string' && typeof id !== 'number') {
    return frameError('bad_request', '"id" must be a string or a number');
  }
  return parseAction(fields, id ?? null);
}

function parseAction(fields: Record<string, unknown>, id: RequestId): ClientAction | FrameError {
  const action = fields.action;
  if (typeof action !== 'string') return frameError('bad_request', '"action" must be a string', id);
  switch (action) {
    case 'ping':
      return { action, id };
    case 'subscribe': {
      const channel = readChannel(fields.payload, id);
      if ('code' in channel) return channel;
      const payload = fields.payload as Record<string, unknown>;
      const joinLeave = payload.join_leave ?? false;
      if (typeof joinLeave !== 'boolean') return frameError('bad_request', '"payload.join_leave" must be true or false', id);
      if (payload.since === undefined) return { action, channel, joinLeave, id };
      const since = payload.since;
      const offset = isObject(since) ? since.offset : undefined;
      const epoch = isObject(since) ? since.epoch : undefined;
      if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0 || typeof epoch !== 'string' || epoch.length > 100) {
        return frameError('bad_request', '"payload.since" must be {"offset": an integer >= 0, "epoch": a string}', id);
      }
      return { action, channel, joinLeave, since: { offset, epoch }, id };
    }
    case 'history': {
      const channel = readChannel(fields.payload, id);
      if ('code' in channel) return channel;
      const limit = (fields.payload as Record<string, unknown>).limit ?? null;
      if (limit !== null && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1)) {
        return frameError('bad_request', '"payload.limit" must be an integer >= 1', id);
      }
      return { action, channel, limit, id };
    }
    case 'unsubscribe':
    case 'presence': {
      const channel = readChannel(fields.payload, id);
      return 'code' in channel ? channel : { action, channel, id };
    }
    case 'publish': {
      const channel = readChannel(fields.payload, id);
      if ('code' in channel) return channel;
      const payload = fields.payload as Record<string, unknown>;
      if (!('message' in payload) || payload.message === undefined) {
        return frameError('bad_request', '"payload.message" is missing', id);
      }
      return { action, channel, messageJson: JSON.stringify(payload.message), id };
    }
    case 'slow': {
      const payload = fields.payload;
      const ms = isObject(payload) ? payload.ms : undefined;
      if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 1 || ms > MAX_SLOW_MS) {
        return frameError('bad_request', `"payload.ms" must be an integer from 1 to ${MAX_SLOW_MS}`, id);
      }
      return { action, ms, id };
    }
    case 'refresh': {
      const payload = fields.payload;
      const token = isObject(payload) ? payload.token : undefined;
      if (typeof token !== 'string' || token === '') return frameError('bad_request', '"payload.token" must be a non-empty string', id);
      return { action, token, id };
    }
    case 'rpc': {
      const payload = fields.payload;
      const method = isObject(payload) ? payload.method : undefined;
      if (typeof method !== 'string' || method === '' || method.length > 200) return frameError('bad_request', '"payload.method" must be a string of 1 to 200 characters', id);
      return { action, method, params: (payload as Record<string, unknown>).params ?? null, id };
    }
    default:
      return frameError('unknown_action', `unknown action ${JSON.stringify(action.slice(0, 50))}`, id);
  }
}

function readChannel(payload: unknown, id: RequestId): ChannelRef | FrameError {
  if (!isObject(payload)) return frameError('bad_request', '"payload" must be an object', id);
  const name = payload.channel;
  if (typeof name !== 'string') return frameError('bad_request', '"payload.channel" must be a string', id);
  const facility = parseChannel(name);
  if (!facility) {
    return frameError(
      'bad_channel',
      'channel must be 1 to 200 of A-Z a-z 0-9 _ - . : @, and user:/session: channels need <owner>:<facility>',
      id,
    );
  }
  return { name, facility };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
