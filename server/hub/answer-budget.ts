/**
 * How large one answer may be: a `history`, a recovery replay, a presence list. The server closes a
 * client whose queued bytes pass `--max-backpressure` (backpressure.ts), so an answer as large as that
 * would cut a client that is reading for the server's own doing. An answer therefore takes at most half
 * of `--max-backpressure`, less what is queued for the client already; what does not fit is left out,
 * and the answer says so.
 */

/** The bytes one answer may take now. */
export function answerBudget(maxBackpressure: number, buffered: number): number {
  return Math.max(0, Math.floor(maxBackpressure / 2) - buffered);
}

/** The last items of `items` (the newest, for a history) whose sizes add up to at most `budget`, and whether any were left out. */
export function newestWithin<T>(items: readonly T[], size: (item: T) => number, budget: number): { kept: T[]; truncated: boolean } {
  let used = 0;
  let from = items.length;
  while (from > 0) {
    const next = used + size(items[from - 1]);
    if (next > budget) break;
    used = next;
    from--;
  }
  return { kept: items.slice(from), truncated: from > 0 };
}

/** The first items of `items` whose sizes add up to at most `budget`, and whether any were left out. */
export function firstWithin<T>(items: readonly T[], size: (item: T) => number, budget: number): { kept: T[]; truncated: boolean } {
  let used = 0;
  let to = 0;
  while (to < items.length) {
    const next = used + size(items[to]);
    if (next > budget) break;
    used = next;
    to++;
  }
  return { kept: items.slice(0, to), truncated: to < items.length };
}
