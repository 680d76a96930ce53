/**
 * The server's event-loop delay over the last whole window (10 s), for `/stats` and `/metrics`: how late
 * the loop ran timers, hence how long any frame may have waited in it. A window is kept rather than all
 * time, so that a long run (make soak) sees the delay now, not since start.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** Seconds of one window. */
export const LOOP_DELAY_WINDOW_S = 10;

export interface LoopDelay {
  /** Seconds the figures cover (the last whole window). */
  window_s: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

/** Milliseconds between the monitor's samples; each sample is that period plus the delay, so it is taken off. */
const RESOLUTION_MS = 10;

export class LoopDelayMonitor {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  private last: LoopDelay = { window_s: LOOP_DELAY_WINDOW_S, p50_ms: 0, p99_ms: 0, max_ms: 0 };
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.histogram.enable();
    this.timer = setInterval(() => this.rotate(), LOOP_DELAY_WINDOW_S * 1000).unref();
  }

  /** The last whole window's figures (zeros before the first one ends). */
  current(): LoopDelay {
    return this.last;
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }

  private rotate(): void {
    const h = this.histogram;
    const ms = (ns: number): number => Math.max(0, Math.round((ns / 1e6 - RESOLUTION_MS) * 100) / 100);
    this.last = { window_s: LOOP_DELAY_WINDOW_S, p50_ms: ms(h.percentile(50)), p99_ms: ms(h.percentile(99)), max_ms: ms(h.max) };
    h.reset();
  }
}
