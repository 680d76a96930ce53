/**
 * What a scenario gets from the worker that runs it: the contract between worker.ts and the scenarios,
 * the built-in ones (scenarios/) and the user scenario's context (user/), which is built on it.
 */
import type { Alarm } from './alarms.js';
import type { Connection } from './connection.js';
import type { Counters, HistogramSet } from './metrics.js';
import type { NamedMetrics } from './named-metrics.js';
import type { SwarmOptions } from './options.js';

/** One slow reply, as bench-slow writes it to CSV. */
export interface SlowSample {
  client: number;
  request: number;
  /** Milliseconds from sending the request to its reply. */
  ms: number;
}

/** A client waiting at the barrier as an object (see {@link ClientContext.whenReleased}). */
export interface BarrierWaiter {
  released(at: number): void;
  fail(err: Error): void;
}

export interface ClientContext {
  /** Global index of this client, 0 to clients-1 across all workers. */
  readonly index: number;
  /** Epoch ms of this client's place on the ramp: when its connect was due (an iteration's start, in concurrency stages). */
  readonly slot: number;
  /** Which run of the scenario this is for this client: 0, or 0, 1, 2, ... for a virtual user of concurrency stages. */
  readonly iteration: number;
  /** Whether `barrier()` may be used: not in concurrency stages, where clients come and go. */
  readonly barrierAllowed: boolean;
  readonly options: SwarmOptions;
  /** The URL to connect to (scenario path and query applied). */
  readonly url: string;
  readonly counters: Counters;
  /** The worker's histograms (µs) for the current interval. */
  readonly histograms: HistogramSet;
  /** Slow replies of the current interval. */
  readonly samples: SlowSample[];
  /** The worker's named timings and checks (a user scenario's). */
  readonly metrics: NamedMetrics;
  /** This client's row of the `--data` file; null without one. */
  readonly data: Readonly<Record<string, string>> | null;
  /**
   * Opens this client's socket from its source address, to `url` (default this client's URL), with the
   * run's token; records the connect time.
   */
  connect(url?: string): Promise<Connection>;
  /**
   * Resolves when every client of every worker has reached it (or failed); all resume at the same
   * instant, and get it as epoch ms, so they can time what follows from one common origin.
   */
  barrier(): Promise<number>;
  /**
   * `barrier` for a client that waits as an object rather than a suspended async function: calls
   * `waiter.released(at)`, or `waiter.fail` with a `deadline` error if the run stops first. An idle
   * client so holds no promise, async frame or closure (crowd.ts: a C100k worker holds 12,500).
   */
  whenReleased(waiter: BarrierWaiter): void;
  /** `sleepUntil` for such a client: calls `alarm.wake()` at `alarm.at`, or `alarm.fail` like `sleep` rejects. */
  wakeAt(alarm: Alarm): void;
  /** Waits; rejects with a `deadline` error if the run stops meanwhile. */
  sleep(ms: number): Promise<void>;
  /** Waits until epoch ms `at` (at once if it has passed); rejects like `sleep`. */
  sleepUntil(at: number): Promise<void>;
  /**
   * Waits until epoch µs `at`, to within about 0.2 ms rather than a timer's millisecond (see pacer.ts),
   * for clients that send on a schedule; rejects like `sleep`.
   */
  pace(at: number): Promise<void>;
}

/** A scenario runs one client from connect to close; it resolves when the client completed its part. */
export type Scenario = (ctx: ClientContext) => Promise<void>;
