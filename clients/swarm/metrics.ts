/**
 * What the swarm counts and how it keeps latency. Latencies are HDR histograms of microseconds
 * (hdr-histogram-js), so a worker process can send its interval histogram to the engine as a compact
 * string and the engine can merge them without losing the tail.
 */
import hdr from 'hdr-histogram-js';

/** How a client failed. One client counts at most one error: the first. */
export const ERROR_KINDS = [
  /** Nothing listens on the address (ECONNREFUSED). */
  'refused',
  /** No local port or source address left (EADDRNOTAVAIL). */
  'addr_not_available',
  /** A connect, reply or close did not come within its time limit. */
  'timeout',
  /** The server closed with a code the scenario did not expect, or dropped the TCP connection. */
  'unexpected_close',
  /** The server sent something the contract does not allow at that point. */
  'protocol_mismatch',
  /** The upgrade was answered with an HTTP status instead of 101. */
  'rejected',
  /** The run's time limit came before the client finished. */
  'deadline',
  /** The server answered a scenario's request with an error event (its code in the message). */
  'server_error',
  /** A frame did not match what a scenario's `expect` asked for. */
  'expectation',
  /** A user scenario's own code threw (by error name in the summary: TypeError, ...), or misused the API. */
  'script',
  /** Anything else; the worker prints the first few. */
  'other',
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number];

/** A failure of one client, with the kind it is counted under. */
export class SwarmError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** Cumulative counters of one worker, or of the whole swarm when summed. */
export interface Counters {
  /** Open right now. */
  connected: number;
  /** Connects started and not yet open or failed. */
  opening: number;
  /** Connects that failed. */
  failed: number;
  /** Connections that were open and have closed. */
  closed: number;
  /** Clients whose scenario ran to its end. */
  completed: number;
  /** Frames sent. */
  sent: number;
  /** Frames received. */
  received: number;
  /** Clients subscribed to their channel (broadcast, pubsub). */
  subscribed: number;
  /** Publish frames sent (broadcast, pubsub). */
  published: number;
  /** Message events received (broadcast, pubsub): each subscriber counts its own copy. */
  delivered: number;
  /** Own messages that did not come back (broadcast, pubsub). */
  ownLost: number;
  errors: Record<ErrorKind, number>;
}

export function emptyCounters(): Counters {
  const errors = Object.fromEntries(ERROR_KINDS.map((kind) => [kind, 0])) as Record<ErrorKind, number>;
  return {
    connected: 0, opening: 0, failed: 0, closed: 0, completed: 0, sent: 0, received: 0,
    subscribed: 0, published: 0, delivered: 0, ownLost: 0, errors,
  };
}

/** Adds `from` into `into`. */
export function addCounters(into: Counters, from: Counters): Counters {
  for (const key of Object.keys(from) as (keyof Counters)[]) {
    if (key === 'errors') continue;
    into[key] += from[key];
  }
  for (const kind of ERROR_KINDS) into.errors[kind] += from.errors[kind];
  return into;
}

export function totalErrors(counters: Counters): number {
  return ERROR_KINDS.reduce((sum, kind) => sum + counters.errors[kind], 0);
}

/**
 * The histograms every run keeps: connect time, echo/message round trip, slow-reply time, the time
 * from a crowd broadcast's due moment to its arrival at each client (fanout), and how late a broadcast
 * publisher sent each message against its due moment (lag: the load generator's own part of rtt and
 * fanout; if it grows, the swarm is not keeping its schedule), and how late each worker's event loop
 * ran (loop: the swarm's own part of every reply it timed; see harness-share.ts).
 */
export const HISTOGRAMS = ['connect', 'rtt', 'slow', 'fanout', 'lag', 'loop'] as const;
export type HistogramName = (typeof HISTOGRAMS)[number];
/** Every histogram but the swarm's own loop delay, which the engine merges by its own rule. */
export const LATENCY_HISTOGRAMS = HISTOGRAMS.filter((name) => name !== 'loop');
export type Histogram = hdr.Histogram;

/** A histogram of microseconds from 1 µs to one hour, 3 significant digits. */
export function newHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

/** One histogram per name. */
export type HistogramSet = Record<HistogramName, Histogram>;

export function newHistogramSet(): HistogramSet {
  return Object.fromEntries(HISTOGRAMS.map((name) => [name, newHistogram()])) as HistogramSet;
}

/** Encodes each histogram (empty ones as ''), for the trip from a worker to the engine. */
export function encodeHistograms(set: HistogramSet): Record<HistogramName, string> {
  const out = {} as Record<HistogramName, string>;
  for (const name of HISTOGRAMS) out[name] = set[name].totalCount === 0 ? '' : hdr.encodeIntoCompressedBase64(set[name]);
  return out;
}

/** Adds encoded histograms (those of `names`) from a worker into each of `sets`, decoding each one once. */
export function mergeEncoded(sets: HistogramSet[], encoded: Partial<Record<HistogramName, string>>, names: readonly HistogramName[] = HISTOGRAMS): void {
  for (const name of names) {
    if (!encoded[name]) continue;
    const decoded = hdr.decodeFromCompressedBase64(encoded[name]);
    for (const into of sets) into[name].add(decoded);
    decoded.destroy();
  }
}

/** Values per round of {@link warmUpHistogramCode}. */
const WARM_UP_VALUES = 2_000;

/**
 * Runs the histogram code a side runs during a run on throwaway histograms until the JIT has compiled
 * it: a worker records and encodes from the first timed value on, the engine decodes, merges and
 * summarizes from the first report on. Before this, that code first ran at the end of a warm-up,
 * unoptimized, while the servers were under load. Warming it in both (broadcast, 50,000 msg/s, 3 server
 * processes) took the 2nd and 3rd timed seconds from p99 4-9 ms to 3-5 ms (the 1st stayed at 6-14 ms).
 *
 * Every run pays for this warm-up, so it does no more than the JIT needs: 8 rounds of 2,000 values
 * (the JIT counts calls and loop iterations, and compiled as much at 2,000 as at 20,000). The engine
 * records and encodes nothing in a run, so its part merges and summarizes one encoded set 8 times.
 */
export function warmUpHistogramCode(side: 'worker' | 'engine'): void {
  const set = newHistogramSet();
  /** Values spread over 50 µs to 140 ms, as round trips and connects are. */
  const fill = (round: number): void => {
    for (let i = 0; i < WARM_UP_VALUES; i++) record(set.fanout, 50 + ((i * 7919) % 20_000) * (1 + (i % 7)));
    record(set.connect, 1000 + round);
  };
  if (side === 'worker') {
    for (let round = 0; round < 8; round++) {
      fill(round);
      encodeHistograms(set);
      resetHistograms(set);
    }
  } else {
    fill(0);
    const encoded = encodeHistograms(set);
    const into = [newHistogramSet()];
    for (let round = 0; round < 8; round++) {
      mergeEncoded(into, encoded);
      summarize(into[0].fanout);
    }
    for (const name of HISTOGRAMS) into[0][name].destroy();
  }
  for (const name of HISTOGRAMS) set[name].destroy();
}

export function resetHistograms(set: HistogramSet): void {
  for (const name of HISTOGRAMS) set[name].reset();
}

/** Percentiles of a histogram in milliseconds; null when it holds no value. */
export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export function summarize(histogram: Histogram): LatencySummary | null {
  if (histogram.totalCount === 0) return null;
  const ms = (us: number): number => Math.round(us) / 1000;
  return {
    count: histogram.totalCount,
    min: ms(histogram.minNonZeroValue),
    mean: ms(histogram.mean),
    p50: ms(histogram.getValueAtPercentile(50)),
    p90: ms(histogram.getValueAtPercentile(90)),
    p99: ms(histogram.getValueAtPercentile(99)),
    p999: ms(histogram.getValueAtPercentile(99.9)),
    max: ms(histogram.maxValue),
  };
}

/** Microseconds since an arbitrary origin, for latency arithmetic inside one process. */
export function nowMicros(): number {
  return performance.now() * 1000;
}

/**
 * Microseconds since the epoch with sub-millisecond steps, to time something sent by one process and
 * received by another on this machine (each process's time origin is read from the same clock).
 */
export function epochMicros(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

/** Records a latency in µs, clamped to the histogram's range. */
export function record(histogram: Histogram, micros: number): void {
  histogram.recordValue(clamp(micros));
}

/**
 * Records how late a periodic sample ran, µs, as every sample it stood in for: a loop blocked for 100 ms
 * held back what would have come each `intervalMicros` in between, and a frame read at a random moment of
 * it waited anywhere from 0 to 100 ms (HdrHistogram's correction for coordinated omission).
 */
export function recordLate(histogram: Histogram, micros: number, intervalMicros: number): void {
  histogram.recordValueWithExpectedInterval(clamp(micros), intervalMicros);
}

const clamp = (micros: number): number => Math.min(3_600_000_000, Math.max(1, Math.round(micros)));
