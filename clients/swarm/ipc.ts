/** Messages between the engine and its worker processes (over the fork IPC channel). */
import type { Counters, HistogramName } from './metrics.js';
import type { Checks } from './named-metrics.js';
import type { SwarmOptions } from './options.js';
import type { SlowSample } from './client-context.js';

/**
 * Engine -> worker: prepare to run clients `worker`, `worker + workers`, ...; the worker answers
 * `prepared`, and its clients connect once every worker has and `launch` says when.
 */
export interface StartMessage {
  type: 'start';
  options: SwarmOptions;
  worker: number;
  /** Milliseconds between reports. */
  reportMs: number;
  /** With --token-secret: the token of each of this worker's clients, in the order it runs them. */
  tokens: string[] | null;
}

/** Engine -> worker: every worker is prepared; client i connects at epoch ms `at` + i * ramp / clients. */
export interface LaunchMessage {
  type: 'launch';
  at: number;
}

/** Engine -> worker: every client has reached the barrier; resume at epoch ms `at`. */
export interface GoMessage {
  type: 'go';
  at: number;
}

/** Engine -> worker: the run's time is up; close every socket and send the final report. */
export interface StopMessage {
  type: 'stop';
}

export type ToWorker = StartMessage | LaunchMessage | GoMessage | StopMessage;

/** Worker -> engine: cumulative counters, histograms and samples of the interval since the last report. */
export interface ReportMessage {
  type: 'report';
  worker: number;
  /** Whether this is the worker's last report (all its clients finished or were stopped). */
  final: boolean;
  counters: Counters;
  /** User + system CPU of the worker process since it started, µs. */
  cpuMicros: number;
  /** Epoch ms of this report, to turn CPU time into a share of a core. */
  at: number;
  /** Longest event-loop delay of the worker during the interval, ms: a late loop inflates every latency it measures. */
  loopDelayMaxMs: number;
  histograms: Record<HistogramName, string>;
  samples: SlowSample[];
  /** Epoch ms when this worker's first connect began; 0 before. */
  firstConnectAt: number;
  /** Epoch ms when this worker's latest connect completed; 0 before. */
  lastConnectedAt: number;
  /** The first few error messages, for the log. */
  errorSamples: string[];
  /** A user scenario's named timings of the interval, encoded (named-metrics.ts). */
  timings: Record<string, string>;
  /** A user scenario's checks so far (cumulative, like the counters). */
  checks: Checks;
  /** What a user scenario's code threw so far, by error name. */
  thrown: Record<string, number>;
}

/** Worker -> engine: loaded and warmed up, ready for `launch`. */
export interface PreparedMessage {
  type: 'prepared';
  worker: number;
}

/** Worker -> engine: each of its clients has reached the barrier or ended. */
export interface ReadyMessage {
  type: 'ready';
  worker: number;
}

export type FromWorker = ReportMessage | PreparedMessage | ReadyMessage;
