/**
 * The moments a worker's sleeping clients wake at, behind one timer: a binary heap ordered by the
 * moment, and a single setTimeout armed for the soonest. A timer per sleeping client cost Node a timer
 * list per distinct duration (each due moment is different) and a heap insert for it, and left no cheap
 * way to ask when the next client is due: the worker walked every sleeper for that, on every sleep, which
 * grew as clients squared (a third of a worker's JS time at 10,000 clients).
 */
import { DueHeap } from './due-heap.js';

/**
 * One sleeping client: woken with `wake` at epoch ms `at`, or failed with `fail` by {@link Alarms.failAll}.
 * A client that is an object with these members sleeps without allocating anything (crowd.ts).
 */
export interface Alarm {
  readonly at: number;
  wake(): void;
  fail(err: Error): void;
}

export class Alarms {
  private readonly heap = new DueHeap<Alarm>();
  private timer: NodeJS.Timeout | null = null;
  /** The moment the timer is armed for; Infinity when it is not. */
  private armedFor = Infinity;

  /** Sleeping clients. */
  get size(): number {
    return this.heap.size;
  }

  /** Epoch ms at which the soonest sleeper is due; Infinity when none sleeps. */
  get soonest(): number {
    return this.heap.peek()?.at ?? Infinity;
  }

  /** Wakes `alarm` at its moment (at once, on the next timer turn, when that has passed). */
  add(alarm: Alarm): void {
    this.heap.push(alarm);
    if (alarm.at < this.armedFor) this.arm();
  }

  /** Fails every sleeper with `err` (the run's deadline) and disarms. */
  failAll(err: Error): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Infinity;
    for (const alarm of this.heap.drain()) alarm.fail(err);
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = this.soonest;
    this.timer = this.armedFor === Infinity ? null : setTimeout(() => this.fire(), Math.max(0, this.armedFor - Date.now()));
  }

  /** Wakes every sleeper that is due, in the order of their moments, then arms for the next. */
  private fire(): void {
    this.timer = null;
    this.armedFor = Infinity;
    const now = Date.now();
    while (this.soonest <= now) this.heap.pop().wake();
    this.arm();
  }
}
