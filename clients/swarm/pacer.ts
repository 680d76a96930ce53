/**
 * Wakes clients at given moments to within a fraction of a millisecond. Node's timers count whole
 * milliseconds and fire up to one late; a publisher that sleeps with them sends each message 0.5 ms
 * after its due moment on average and up to 2 ms after it at p99 (measured at 50,000 msg/s), and since
 * every message is timed from its due moment, that lateness is the load generator's, not the server's.
 *
 * The pacer sleeps with a timer until the earliest wake-up is COARSE_MS away, then in slices of at most
 * SLICE_MS with Atomics.wait, which blocks this process's event loop, and lets the loop handle its I/O
 * between slices; so the rest of the worker's clients wait at most one slice for their frames. One
 * pacer serves every client of a worker: many waiting clients still cost one wait, not one each.
 */
import { DueHeap } from './due-heap.js';
import { epochMicros } from './metrics.js';

/** Below this many ms to the next wake-up the pacer stops using timers. */
const COARSE_MS = 2;
/** The longest the event loop is blocked at a time, ms. */
const SLICE_MS = 0.2;

interface Waiter {
  at: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class Pacer {
  private readonly heap = new DueHeap<Waiter>();
  private timer: NodeJS.Timeout | null = null;
  /** The moment (epoch µs) the pending timer was set to wake for. */
  private timerFor = Infinity;
  private immediate: NodeJS.Immediate | null = null;
  /** Atomics.wait needs a shared cell to wait on; nothing ever notifies it, so each wait is a sleep. */
  private readonly cell = new Int32Array(new SharedArrayBuffer(4));
  private stoppedWith: Error | null = null;

  /** Resolves at epoch µs `at` (in the next loop turn if it has passed); rejects if the pacer stops first. */
  until(at: number): Promise<void> {
    if (this.stoppedWith) return Promise.reject(this.stoppedWith);
    return new Promise<void>((resolve, reject) => {
      this.heap.push({ at, resolve, reject });
      if (at < this.timerFor) this.clearTimer();
      this.drive();
    });
  }

  /** Rejects every waiter, and every later `until`, with `err`. */
  stop(err: Error): void {
    this.stoppedWith = err;
    this.clearTimer();
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
    for (const waiter of this.heap.drain()) waiter.reject(err);
  }

  /** How many clients are waiting. */
  get waiting(): number {
    return this.heap.size;
  }

  private drive(): void {
    const soonest = this.heap.peek();
    if (this.timer || this.immediate || !soonest) return;
    const next = soonest.at;
    const ms = (next - epochMicros()) / 1000;
    if (ms > COARSE_MS) {
      this.timerFor = next;
      this.timer = setTimeout(() => {
        this.timer = null;
        this.timerFor = Infinity;
        this.drive();
      }, ms - COARSE_MS);
    } else {
      this.immediate = setImmediate(() => this.wake());
    }
  }

  /** Runs in the loop's check phase, after its I/O: sleeps one slice at most, then wakes whoever is due. */
  private wake(): void {
    this.immediate = null;
    let now = epochMicros();
    const first = this.heap.peek();
    if (first && first.at > now) {
      Atomics.wait(this.cell, 0, 0, Math.min(SLICE_MS, (first.at - now) / 1000));
      now = epochMicros();
    }
    while ((this.heap.peek()?.at ?? Infinity) <= now) this.heap.pop().resolve();
    this.drive();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerFor = Infinity;
  }
}
