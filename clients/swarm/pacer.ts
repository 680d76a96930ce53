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
  /** Waiters as a binary min-heap on `at`. */
  private readonly heap: Waiter[] = [];
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
      this.push({ at, resolve, reject });
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
    for (const waiter of this.heap.splice(0)) waiter.reject(err);
  }

  /** How many clients are waiting. */
  get waiting(): number {
    return this.heap.length;
  }

  private drive(): void {
    if (this.timer || this.immediate || this.heap.length === 0) return;
    const next = this.heap[0].at;
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
    const first = this.heap[0];
    if (first && first.at > now) {
      Atomics.wait(this.cell, 0, 0, Math.min(SLICE_MS, (first.at - now) / 1000));
      now = epochMicros();
    }
    while (this.heap.length > 0 && this.heap[0].at <= now) this.pop().resolve();
    this.drive();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerFor = Infinity;
  }

  private push(waiter: Waiter): void {
    const heap = this.heap;
    let i = heap.push(waiter) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent].at <= waiter.at) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = waiter;
  }

  private pop(): Waiter {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && heap[right].at < heap[left].at ? right : left;
        if (heap[child].at >= last.at) break;
        heap[i] = heap[child];
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }
}
