/**
 * History in Redis (`--history` with `--redis`): every instance reads and writes the same history, so
 * they all agree on each message's offset.
 *
 * Layout (docs/protocol.md, Redis layout), under `<prefix>:` when a prefix is set:
 * - `history:<channel>`: a stream, entry id `<offset>-0`, fields `t` (when it was kept, epoch ms) and
 *   `m` (the message's JSON text), capped at `size` entries (exact MAXLEN), expiring `ttl` after the
 *   channel's last message;
 * - `history-meta:<channel>`: a hash, `epoch` and `offset` (the last offset given), expiring
 *   META_TTL_S (or the TTL, when longer) after the channel's last message.
 *
 * Writing is the broker's: its publish script (KEPT_PUBLISH_SCRIPT, one call per event-loop turn, as
 * every publish of the single-Redis driver) gives each message the next offset, adds it to the stream
 * and PUBLISHes it wrapped in an envelope carrying offset and epoch, in one atomic step. Redis runs
 * scripts one at a time, so offsets follow the order Redis delivers the messages in, on every instance.
 *
 * Guarantees:
 * - An offset never names two messages: a new epoch starts whenever the meta hash is gone (expired, or
 *   Redis restarted empty), and the stream is emptied then.
 * - `since` and `last` read epoch, top offset and entries in one script, so what they return is one
 *   moment's state.
 * - Messages published while Redis was away (delivered to one instance only) are not kept, and carry no
 *   offset.
 */
import { Redis } from 'ioredis';
import { FAIL_FAST } from '../broker/redis/shared.js';
import { prefixed } from '../protocol/index.js';
import type { History, Kept, Missed, Position } from './types.js';

/** How long a channel's epoch and offset counter outlive its last message, at least (1 day). */
export const META_TTL_S = 86_400;

/** The stream and meta hash of a channel. */
export function historyKeys(channel: string, prefix: string): { stream: string; meta: string } {
  return { stream: prefixed(prefix, `history:${channel}`), meta: prefixed(prefix, `history-meta:${channel}`) };
}

/**
 * The broker's publish script with history. KEYS: three per message (its pub/sub name, stream and meta
 * hash); ARGV: the payloads in the same order, then the cache's seconds (0: none), the history's size,
 * its TTL in ms, the meta TTL in seconds, the time (epoch ms), and an epoch to give a channel that has
 * none. A channel's epoch, offset counter and expiries are touched once per call however many of the
 * turn's messages it has (one HINCRBY by their count), so each message costs its XADD and PUBLISH. Each message goes out on its pub/sub name as `#<offset>:<epoch>:<json>` (opened by envelope.ts).
 */
export const KEPT_PUBLISH_SCRIPT = `
local n = #KEYS / 3
local expire = tonumber(ARGV[n + 1])
local size, ttl, metaTtl, now, fresh = ARGV[n + 2], ARGV[n + 3], ARGV[n + 4], ARGV[n + 5], ARGV[n + 6]
-- Per channel, once per call: how many messages it has here, its epoch, and its offsets (one HINCRBY).
local streams, counts, epochs, nexts = {}, {}, {}, {}
for i = 1, n do
  local meta = KEYS[3 * i]
  streams[meta] = KEYS[3 * i - 1]
  counts[meta] = (counts[meta] or 0) + 1
end
for meta, count in pairs(counts) do
  local epoch = redis.call('HGET', meta, 'epoch')
  if not epoch then
    epoch = fresh
    redis.call('DEL', streams[meta])
    redis.call('HSET', meta, 'epoch', epoch)
  end
  epochs[meta] = epoch
  nexts[meta] = redis.call('HINCRBY', meta, 'offset', count) - count + 1
  redis.call('EXPIRE', meta, metaTtl)
end
for i = 1, n do
  local name, stream, meta, payload = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i], ARGV[i]
  local offset = nexts[meta]
  nexts[meta] = offset + 1
  redis.call('XADD', stream, 'MAXLEN', size, offset .. '-0', 't', now, 'm', payload)
  if expire > 0 then redis.call('SET', name, payload, 'EX', expire) end
  redis.call('PUBLISH', name, '#' .. offset .. ':' .. epochs[meta] .. ':' .. payload)
end
for meta, stream in pairs(streams) do redis.call('PEXPIRE', stream, ttl) end
return n`;

/**
 * The end both read scripts share: appends id and message of each entry younger than the cutoff
 * (ARGV[2]; entries kept at or before it are past the TTL) to `out`, and returns it.
 */
const YOUNG_ENTRIES = `
local cutoff = tonumber(ARGV[2])
for _, entry in ipairs(entries) do
  if tonumber(entry[2][2]) > cutoff then
    out[#out + 1] = entry[1]
    out[#out + 1] = entry[2][4]
  end
end
return out`;

/**
 * KEYS: stream, meta; ARGV: the first entry id wanted (`<offset>-0`), the cutoff. Returns the epoch
 * ('' when none), the last offset given, then id and message of each entry, oldest first.
 */
const SINCE_SCRIPT = `
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then return {'', 0} end
local out = {epoch, tonumber(redis.call('HGET', KEYS[2], 'offset'))}
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+')
${YOUNG_ENTRIES}`;

/** KEYS: stream, meta; ARGV: how many, the cutoff. Returns the epoch, then id and message of the newest entries, newest first. */
const LAST_SCRIPT = `
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then return {''} end
local out = {epoch}
local entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[1])
${YOUNG_ENTRIES}`;

type ScriptedRedis = Redis & {
  historySince(stream: string, meta: string, firstId: string, cutoff: number): Promise<(string | number)[]>;
  historyLast(stream: string, meta: string, count: number, cutoff: number): Promise<string[]>;
};

/** Options of {@link RedisHistory}. */
export interface RedisHistoryOptions {
  url: string;
  prefix: string;
  size: number;
  ttlMs: number;
  /** The clock, epoch ms (tests move it); the broker's publish script is given Date.now(). */
  now?: () => number;
}

/** The reading side; the broker writes (see the file's TSDoc). */
export class RedisHistory implements History {
  readonly kind = 'redis';
  readonly size: number;
  private readonly redis: ScriptedRedis;
  private readonly now: () => number;

  constructor(private readonly options: RedisHistoryOptions) {
    this.size = options.size;
    this.now = options.now ?? Date.now;
    this.redis = new Redis(options.url, { ...FAIL_FAST, connectionName: 'pubsub-server:history' }) as ScriptedRedis;
    this.redis.defineCommand('historySince', { numberOfKeys: 2, lua: SINCE_SCRIPT });
    this.redis.defineCommand('historyLast', { numberOfKeys: 2, lua: LAST_SCRIPT });
    this.redis.on('error', () => undefined); // a failed read rejects; the endpoint counts and answers it
    void this.redis.connect().catch(() => undefined);
  }

  /** The broker gave every message that travelled through Redis its position; others have none. */
  keep(_channel: string, _messageJson: string, given: Position | undefined): Position | undefined {
    return given;
  }

  async since(channel: string, since: Position): Promise<Missed> {
    const { stream, meta } = historyKeys(channel, this.options.prefix);
    const reply = await this.redis.historySince(stream, meta, `${since.offset + 1}-0`, this.now() - this.options.ttlMs);
    const epoch = String(reply[0]);
    const top = Number(reply[1]);
    if (epoch === '' || since.epoch !== epoch || since.offset > top) return { recovered: false, messages: [] };
    const messages = entries(reply, 2);
    const firstMissed = since.offset + 1;
    return { recovered: firstMissed > top || (messages.length > 0 && messages[0].offset === firstMissed), messages };
  }

  async last(channel: string, limit: number): Promise<{ epoch: string; messages: Kept[] }> {
    const { stream, meta } = historyKeys(channel, this.options.prefix);
    const reply = await this.redis.historyLast(stream, meta, limit, this.now() - this.options.ttlMs);
    return { epoch: String(reply[0]), messages: entries(reply, 1).reverse() };
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

/** The (id, message) pairs of a script's reply from `from` on. */
function entries(reply: (string | number)[], from: number): Kept[] {
  const kept: Kept[] = [];
  for (let i = from; i + 1 < reply.length; i += 2) kept.push({ offset: parseInt(String(reply[i]), 10), messageJson: String(reply[i + 1]) });
  return kept;
}
