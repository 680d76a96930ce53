/**
 * How much of this machine a run could have had, measured just before its load starts. One thread per
 * core spins, reading the clock: every gap between two reads longer than STALL_MS is time the thread
 * wanted a core and did not get it (the hypervisor, or some other process, had it). Then each thread times
 * a fixed piece of work, a JSON round trip of a publish frame REFERENCE_ROUNDS times, which tells a slow
 * core from a fast one.
 *
 * Why: on this kind of 2-core VM the same commit needed 2.3x the CPU per message on one boot as on
 * another, and its cross-instance p99 went from 3 ms to 30-300 ms with it. With these figures in every
 * summary and in history.csv, a slower host is told apart from slower code.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** A gap between two clock reads longer than this is a stall; reading the clock itself takes well under 1 µs. */
export const STALL_MS = 0.2;
/** JSON round trips in the reference work (255 ms on the slower boot of this VM kind seen on 2026-11-24). */
export const REFERENCE_ROUNDS = 200_000;

export interface HostCheck {
  /** Seconds each thread spun. */
  seconds: number;
  /** Spinning threads, one per core. */
  threads: number;
  /** Share of the spinning time the threads did not run, over all threads, %. */
  stalledPct: number;
  /** The longest single stall of any thread, ms. */
  longestStallMs: number;
  /** The reference work's time on the fastest thread, ms; lower is a faster core. */
  referenceMs: number;
}

interface ThreadResult {
  stalledMs: number;
  longestMs: number;
  referenceMs: number;
}

// Runs in each thread: spin for `seconds`, then the reference work; posts a ThreadResult.
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { seconds, stallMs, rounds } = workerData;
const end = performance.now() + seconds * 1000;
let last = performance.now();
let stalledMs = 0;
let longestMs = 0;
for (;;) {
  const now = performance.now();
  if (now >= end) break;
  const gap = now - last;
  if (gap > stallMs) {
    stalledMs += gap;
    if (gap > longestMs) longestMs = gap;
  }
  last = now;
}
const frame = '{"action":"publish","payload":{"channel":"bench","message":{"c":1,"t":1732460000000000,"p":""}}}';
let length = 0;
const started = performance.now();
for (let i = 0; i < rounds; i++) length += JSON.stringify(JSON.parse(frame)).length;
const referenceMs = performance.now() - started;
if (length !== rounds * frame.length) throw new Error('reference work went wrong');
parentPort.postMessage({ stalledMs, longestMs, referenceMs });
`;

/** Spins one thread per core for `seconds` (then times the reference work) and reports what it saw. */
export async function checkHost(seconds: number): Promise<HostCheck> {
  if (!(seconds > 0)) throw new RangeError(`host check: seconds must be above 0, got ${seconds}`);
  const threads = availableParallelism();
  const results = await Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise<ThreadResult>((resolve, reject) => {
          const worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { seconds, stallMs: STALL_MS, rounds: REFERENCE_ROUNDS } });
          worker.once('message', resolve);
          worker.once('error', reject);
          worker.once('exit', (code) => reject(new Error(`host check thread exited with ${code} before reporting`)));
        }),
    ),
  );
  const stalledMs = results.reduce((sum, r) => sum + r.stalledMs, 0);
  return {
    seconds,
    threads,
    stalledPct: (stalledMs / (threads * seconds * 1000)) * 100,
    longestStallMs: Math.max(...results.map((r) => r.longestMs)),
    referenceMs: Math.min(...results.map((r) => r.referenceMs)),
  };
}

/** The summary's line for it. */
export function hostLine(host: HostCheck): string {
  return (
    `host     stalled ${host.stalledPct.toFixed(1)}% of ${host.seconds} s on ${host.threads} spinning threads (longest ${host.longestStallMs.toFixed(1)} ms), ` +
    `reference work ${Math.round(host.referenceMs)} ms (before the load; lower is a faster core)`
  );
}
