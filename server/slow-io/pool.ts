/**
 * A fixed set of connections lent out one caller at a time. The real-IO slow backends need it because
 * BLPOP and pg_sleep each hold their connection for the whole wait.
 */
export class ConnectionPool<T> {
  private readonly idle: T[];
  private readonly waiting: ((item: T) => void)[] = [];

  constructor(readonly items: readonly T[]) {
    this.idle = [...items];
  }

  /** Runs `work` with a connection of its own, waiting for one to be free. */
  async use<R>(work: (item: T) => Promise<R>): Promise<R> {
    const item = this.idle.pop() ?? (await new Promise<T>((resolve) => this.waiting.push(resolve)));
    try {
      return await work(item);
    } finally {
      const next = this.waiting.shift();
      if (next) next(item);
      else this.idle.push(item);
    }
  }
}
