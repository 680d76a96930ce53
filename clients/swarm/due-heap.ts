/**
 * Things due at a moment, as a binary min-heap on `at`: the soonest is at hand, adding and taking one
 * cost log n. The pacer (epoch µs) and the alarms (epoch ms) each keep their waiting clients in one.
 */
export class DueHeap<T extends { readonly at: number }> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  /** The soonest item, or undefined when empty. */
  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const heap = this.items;
    let i = heap.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent].at <= item.at) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = item;
  }

  /** Takes the soonest item; the heap must not be empty. */
  pop(): T {
    const heap = this.items;
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

  /** Takes every item, in no particular order. */
  drain(): T[] {
    return this.items.splice(0);
  }
}
