/**
 * History in Redis (`--history` with `--redis`): every instance reads and writes the same history, so
 * they all agree on each message's offset.
 *
 * Layout (docs/protocol.md, Redis layout), under `<prefix>:` when a prefix is set:
 * - `history:<channel>`: a stream, entry id `<offset>-0`, fields `t` (when it was kept, epoch ms) and
 *   `m` (the message's JSON text), capped at `size` entries (exact MAXLEN), expiring `ttl` after the
 *   channel's last message;
 * - `history-meta:<channel>`: a hash, `epoch` and `offset` (the last offset given), expiring the TTL
 *   after the channel's last message (a quiet channel then starts a new epoch).
 *
 * Writing is the broker's (server/broker/redis/kept.ts): its publish script, one call per event-loop
 * turn as every publish of the single-Redis driver, gives each message the next offset, adds it to the
 * stream and PUBLISHes it wrapped in an envelope carrying offset and epoch, in one atomic step. Redis
 * runs scripts one at a time, so offsets follow the order Redis delivers the messages in, on every
 * instance. This side only reads.
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
import { historyKeys } from '../broker/redis/kept.js';
import { FAIL_FAST } from '../broker/redis/shared.js';
import type { History, Kept, Missed, Position } from './types.js';

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
