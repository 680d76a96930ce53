/**
 * The bounds of what one process keeps for channels (`--history` without Redis, the `--expire` cache):
 * at most `maxChannels` channels and `maxBytes` bytes per store. A store keeps its channels in a Map in
 * the order they were last written (a write moves its channel to the end), so the channel written to
 * least recently is the first, and is the first forgotten.
 */

/** `--max-kept-channels`, `--max-kept-bytes`. */
export interface KeptLimits {
  maxChannels: number;
  maxBytes: number;
}

/** What a store keeps now, and what it dropped: `expired` by the TTL, `evicted` by the bounds. */
export interface KeptCounters {
  channels: number;
  bytes: number;
  expired: number;
  evicted: number;
}

export const NO_LIMITS: KeptLimits = { maxChannels: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER };

/**
 * Forgets the first channels of `channels` until the store is within `limits` (`bytes` reads its size
 * after each `forget`); never `written`, the channel just written. Returns how many were forgotten.
 */
export function evictOldest<K>(channels: Map<K, unknown>, bytes: () => number, limits: KeptLimits, forget: (channel: K) => void, written: K): number {
  let evicted = 0;
  while (channels.size > limits.maxChannels || bytes() > limits.maxBytes) {
    const oldest = channels.keys().next();
    if (oldest.done || oldest.value === written) break;
    forget(oldest.value);
    evicted++;
  }
  return evicted;
}

/** What a kept message costs, about: its text (V8 keeps ASCII text a byte a character) and its record. */
export const keptMessageBytes = (json: string): number => json.length + 64;
/** What a channel costs besides its messages, about: its name (key and record) and its records. */
export const keptChannelBytes = (name: string): number => 2 * name.length + 160;
