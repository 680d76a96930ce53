/**
 * What one broadcast copy costs in CPU, each side, from a crowd run's seconds (bench-c100k, bench-c1m),
 * and the floor it puts under fanout on this machine: a broadcast to N clients needs N x (server +
 * swarm CPU per copy) of CPU, so on `cores` cores its last copy cannot arrive sooner than that over
 * `cores`, whatever either side's code does with its latency.
 *
 * Only the seconds in which every client is connected count (no connect burst in them). Those in which
 * copies arrived carry the copies' CPU on top of the rest (echoes, idle processes); the median of the
 * seconds without copies is that rest, so it is taken off (`net`). When no second is free of copies
 * (at C1M the broadcasts overlap), all the CPU is laid on the copies: an upper bound (`at most`).
 */
import { availableParallelism } from 'node:os';
import type { TickEvent } from '../../clients/swarm/swarm.js';

export interface CopyCpu {
  /** CPU seconds per copy, each side. */
  server: number;
  swarm: number;
  /** Net of the quiet seconds' CPU, or all of it laid on the copies. */
  bound: 'net' | 'at most';
  /** Seconds with copies, and without, that it was taken over. */
  busySeconds: number;
  quietSeconds: number;
}

type Second = { server: number; swarm: number; copies: number };

export class CopyCpuMeter {
  private readonly seconds: Second[] = [];

  /** `clients`: the run's count; a second counts once every client is connected or has failed to. */
  constructor(private readonly clients: number) {}

  /** The engine's tick listener. */
  readonly add = (tick: TickEvent): void => {
    const { connected, failed } = tick.counters;
    if (connected === 0 || connected + failed < this.clients || !tick.server) return;
    this.seconds.push({ server: tick.server.cpuPct / 100, swarm: tick.clientCpuPct / 100, copies: tick.fanout?.count ?? 0 });
  };

  /**
   * Null when no copy arrived while every client was connected. `net`: take the quiet seconds' CPU off
   * (a lower bound, for a floor); false: lay all of it on the copies (an upper bound, for a ceiling, and
   * where seconds without copies are not quiet, such as C1M's, whose copies arrive for a minute).
   */
  result(net = true): CopyCpu | null {
    const busy = this.seconds.filter((s) => s.copies > 0);
    const quiet = net ? this.seconds.filter((s) => s.copies === 0) : [];
    const copies = busy.reduce((sum, s) => sum + s.copies, 0);
    if (copies === 0) return null;
    const base = quiet.length > 0 ? { server: median(quiet.map((q) => q.server)), swarm: median(quiet.map((q) => q.swarm)) } : { server: 0, swarm: 0 };
    const over = (side: 'server' | 'swarm'): number => Math.max(0, busy.reduce((sum, s) => sum + s[side] - base[side], 0)) / copies;
    return { server: over('server'), swarm: over('swarm'), bound: quiet.length > 0 ? 'net' : 'at most', busySeconds: busy.length, quietSeconds: quiet.length };
  }
}

/** Seconds the CPU of `copies` copies takes at the least on `cores` cores. */
export function fanoutFloorSeconds(cpu: CopyCpu, copies: number, cores = availableParallelism()): number {
  return (copies * (cpu.server + cpu.swarm)) / cores;
}

/** "12.3 us of server CPU and 45.6 us of swarm CPU per copy (net of ...)", as the benches print it. */
export function copyCpuText(cpu: CopyCpu): string {
  const how = cpu.bound === 'net'
    ? `net of the ${cpu.quietSeconds} s without copies, over ${cpu.busySeconds} s with`
    : `at most: all the CPU of ${cpu.busySeconds} s, echoes included; no second was free of copies`;
  return `${(cpu.server * 1e6).toFixed(1)} us of server CPU and ${(cpu.swarm * 1e6).toFixed(1)} us of swarm CPU per copy (${how})`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
