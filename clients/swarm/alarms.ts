/**
 * The moments a worker's sleeping clients wake at, behind one timer: a binary heap ordered by the
 * moment, and a single setTimeout armed for the soonest. A timer per sleeping client cost Node a timer
 * list per distinct duration (each due moment is different) and a heap insert for it, and left no cheap
 * way to ask when the next client is due: the worker walked every sleeper for that, on every sleep, which
 * grew as clients squared (a third of a worker's JS time at 10,000 clients).
 */

/** One sleeping client: woken with `wake` at epoch ms `at`, or failed with `fail` by {@link Alarms.failAll}. */
interface Alarm {
  at: number;
  wake: () => void;
  fail: (err: Error) => void;
}

export class Alarms {
  private readonly heap: Alarm[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** The moment the timer is armed for; Infinity when it is not. */
  private armedFor = Infinity;

  /** Sleeping clients. */
  get size(): number {
    return this.heap.length;
  }

  /** Epoch ms at which the soonest sleeper is due; Infinity when none sleeps. */
  get soonest(): number {
    return this.heap.length > 0 ? this.heap[0].at : Infinity;
  }

  /** Wakes `wake` at epoch ms `at` (at once, on the next timer turn, when `at` has passed). */
  add(at: number, wake: () => void, fail: (err: Error) => void): void {
    const heap = this.heap;
    heap.push({ at, wake, fail });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent].at <= heap[i].at) break;
      [heap[parent], heap[i]] = [heap[i], heap[parent]];
      i = parent;
    }
    if (at < this.armedFor) this.arm();
  }

  /** Fails every sleeper with `err` (the run's deadline) and disarms. */
  failAll(err: Error): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Infinity;
    for (const alarm of this.heap.splice(0)) alarm.fail(err);
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
    while (this.heap.length > 0 && this.heap[0].at <= now) this.pop().wake();
    this.arm();
  }

  private pop(): Alarm {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let least = i;
        if (left < heap.length && heap[left].at < heap[least].at) least = left;
        if (right < heap.length && heap[right].at < heap[least].at) least = right;
        if (least === i) break;
        [heap[least], heap[i]] = [heap[i], heap[least]];
        i = least;
      }
    }
    return top;
  }
}
