/**
 * Time limits of the swarm's waits (a connect, a reply, a close) without a timer each: the things that
 * wait are in one set, and one interval per process looks them over every SWEEP_MS. A limit is 10 s
 * by default and fires up to SWEEP_MS late, which no figure depends on; a timer per wait cost the swarm
 * a Timeout object, a list insert and a clearTimeout for every frame it awaited.
 */

/** How often the waits are looked over, ms. */
export const SWEEP_MS = 100;

/** Something with a time limit: `expire` is called once `deadline` (performance.now() ms) has passed. */
export interface Expiring {
  readonly deadline: number;
  expire(): void;
}

const waiting = new Set<Expiring>();
let sweeper: NodeJS.Timeout | null = null;

function sweep(): void {
  const now = performance.now();
  for (const item of waiting) {
    if (item.deadline <= now) {
      waiting.delete(item);
      item.expire();
    }
  }
  if (waiting.size === 0 && sweeper) {
    clearInterval(sweeper);
    sweeper = null;
  }
}

/** Watches `item` until {@link unwatch}; its `deadline` may change meanwhile. */
export function watch(item: Expiring): void {
  waiting.add(item);
  sweeper ??= setInterval(sweep, SWEEP_MS).unref();
}

export function unwatch(item: Expiring): void {
  waiting.delete(item);
}
