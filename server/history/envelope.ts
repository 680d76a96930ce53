/**
 * The envelope a message travels in through Redis when the history is there (server/history/redis.ts):
 * `#<offset>:<epoch>:<json>`. A JSON text never starts with `#`, so a payload of another program (a
 * plain `redis-cli PUBLISH`) is never taken for one.
 */
import { isJsonText } from '../protocol/index.js';
import type { Position } from './types.js';

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
