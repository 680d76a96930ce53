/** Reads a process's CPU time and resident memory from /proc (Linux), to watch a server the swarm loads. */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times; 100 on every Linux that Node supports here. */
const CLOCK_TICKS = 100;

export interface ProcessSample {
  /** User + system CPU since the process started, µs. */
  cpuMicros: number;
  /** Resident set size, bytes. */
  rssBytes: number;
}

/** Samples `pid`; null when it is gone or /proc is not there. */
export function sampleProcess(pid: number): ProcessSample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses; the fields after its last ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
    if (!Number.isFinite(ticks) || !Number.isFinite(rssKb)) return null;
    return { cpuMicros: (ticks * 1e6) / CLOCK_TICKS, rssBytes: rssKb * 1024 };
  } catch {
    return null;
  }
}
