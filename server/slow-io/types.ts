/** One backend of the `slow` action: real asynchronous IO that takes about `ms` milliseconds. */
export interface SlowIo {
  /** Waits `ms` milliseconds doing real IO; rejects when the IO fails. */
  wait(ms: number): Promise<void>;
  /** One line for logs and `/stats`, e.g. `postgres pg_sleep, pool 10`. */
  readonly description: string;
  /** Closes the backend's connections; pending waits reject. */
  close(): Promise<void>;
}
