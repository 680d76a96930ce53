/**
 * The writing side of the history in Redis (`--history` with `--redis`): the broker's publish script
 * gives each message the next offset of its channel, adds it to the channel's stream and PUBLISHes it
 * wrapped in an envelope that carries offset and epoch, in one atomic step, so every instance agrees on
 * offsets. The reading side, and the layout, are server/history/redis.ts's.
 *
 * The envelope: `#<offset>:<epoch>:<json>`. A JSON text never starts with `#`, so a payload of another
 * program (a plain `redis-cli PUBLISH`) is never taken for one.
 */
import { isJsonText, prefixed, type Position } from '../../protocol/index.js';

/** The stream and meta hash of a channel. */
export function historyKeys(channel: string, prefix: string): { stream: string; meta: string } {
  return { stream: prefixed(prefix, `history:${channel}`), meta: prefixed(prefix, `history-meta:${channel}`) };
}

/**
 * The broker's publish script with history. KEYS: three per message (its pub/sub name, stream and meta
 * hash); ARGV: the payloads in the same order, then the cache's seconds (0: none), the history's size,
 * its TTL in ms, the meta TTL in seconds, the time (epoch ms), and an epoch to give a channel that has
 * none. A channel's epoch, offset counter and expiries are touched once per call however many of the
 * turn's messages it has (one HINCRBY by their count), so each message costs its XADD and PUBLISH. Each
 * message goes out on its pub/sub name as `#<offset>:<epoch>:<json>` ({@link openEnvelope}). Returns
 * each message's offset and epoch, in order (offset 1, epoch 1, offset 2, ...).
 */
export const KEPT_PUBLISH_SCRIPT = `
local n = #KEYS / 3
local expire = tonumber(ARGV[n + 1])
local size, ttl, metaTtl, now, fresh = ARGV[n + 2], ARGV[n + 3], ARGV[n + 4], ARGV[n + 5], ARGV[n + 6]
-- Per channel, once per call: how many messages it has here, its epoch, and its offsets (one HINCRBY).
local streams, counts, epochs, nexts, positions = {}, {}, {}, {}, {}
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
  positions[2 * i - 1], positions[2 * i] = offset, epochs[meta]
end
for meta, stream in pairs(streams) do redis.call('PEXPIRE', stream, ttl) end
return positions`;

/**
 * A payload the publish script sent: the message and its position; undefined for any other payload
 * (another program's PUBLISH), which the broker delivers as it is.
 */
export function openEnvelope(payload: string): { messageJson: string; position: Position } | undefined {
  if (payload.charCodeAt(0) !== 35 /* # */) return undefined;
  const afterOffset = payload.indexOf(':', 1);
  const afterEpoch = afterOffset < 0 ? -1 : payload.indexOf(':', afterOffset + 1);
  if (afterEpoch < 0) return undefined;
  const offset = Number(payload.slice(1, afterOffset));
  const messageJson = payload.slice(afterEpoch + 1);
  if (!Number.isSafeInteger(offset) || offset < 1 || !isJsonText(messageJson)) return undefined;
  return { messageJson, position: { offset, epoch: payload.slice(afterOffset + 1, afterEpoch) } };
}
