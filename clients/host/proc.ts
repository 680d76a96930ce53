/** Reads a process's CPU time and resident memory from /proc (Linux), to watch a server the swarm loads. */
import { readdirSync, readFileSync } from 'node:fs';

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
    const cpu = statTimes(pid);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
    if (!Number.isFinite(cpu.own) || !Number.isFinite(rssKb)) return null;
    return { cpuMicros: cpu.own, rssBytes: rssKb * 1024 };
  } catch {
    return null;
  }
}

/**
 * CPU µs `pid` used itself (every thread), and CPU µs of its children that have exited and been waited
 * for (`cutime` + `cstime`): with both, a process tree's cost counts workers that are gone. Unlike
 * {@link sampleProcess} it reads a process that has exited but is not yet reaped. Null when it is gone.
 */
export function processCpuMicros(pid = process.pid): { own: number; reaped: number } | null {
  try {
    const times = statTimes(pid);
    return Number.isFinite(times.own) ? times : null;
  } catch {
    return null;
  }
}

/**
 * The fields of a /proc stat file (`/proc/<pid>/stat`, `/proc/<pid>/task/<tid>/stat`) after the command
 * name: field 0 is the state. The name may hold spaces and parentheses; the fields after its last ')'
 * are fixed. Throws when the file is gone.
 */
export function statFields(path: string): string[] {
  const stat = readFileSync(path, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

function statTimes(pid: number): { own: number; reaped: number } {
  const fields = statFields(`/proc/${pid}/stat`);
  const micros = (i: number): number => (Number(fields[i]) * 1e6) / CLOCK_TICKS;
  return { own: micros(11) + micros(12), reaped: micros(13) + micros(14) };
}

/** A server and the processes it started (a `--workers` supervisor and its workers), summed. */
export interface TreeSample extends ProcessSample {
  /** CPU µs of each process in the tree, to find the busiest one. */
  perProcess: Map<number, number>;
}

/** Samples `pid` and its children (one level: a supervisor's workers); null when `pid` is gone. */
export function sampleTree(pid: number): TreeSample | null {
  const root = sampleProcess(pid);
  if (!root) return null;
  const sample: TreeSample = { ...root, perProcess: new Map([[pid, root.cpuMicros]]) };
  for (const child of childPids(pid)) {
    const each = sampleProcess(child);
    if (!each) continue;
    sample.cpuMicros += each.cpuMicros;
    sample.rssBytes += each.rssBytes;
    sample.perProcess.set(child, each.cpuMicros);
  }
  return sample;
}

/** The highest CPU share (%) of one process of the tree between two samples `elapsedMicros` apart. */
export function busiestPct(before: TreeSample, now: TreeSample, elapsedMicros: number): number {
  let busiest = 0;
  for (const [pid, cpu] of now.perProcess) {
    const earlier = before.perProcess.get(pid);
    if (earlier !== undefined) busiest = Math.max(busiest, cpu - earlier);
  }
  return (busiest / elapsedMicros) * 100;
}

/** The process ids of `pid`'s children. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * The machine's memory from one read of /proc/meminfo: `slabBytes`, the kernel's object caches, where
 * every socket's state lives; `availableBytes` (MemAvailable), what can be used without swapping. Each
 * null when it is not there.
 */
export function meminfo(): { slabBytes: number | null; availableBytes: number | null } {
  let text = '';
  try {
    text = readFileSync('/proc/meminfo', 'utf8');
  } catch {
    // no /proc: both unknown
  }
  const bytes = (field: string): number | null => {
    const kb = Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
    return Number.isFinite(kb) ? kb * 1024 : null;
  };
  return { slabBytes: bytes('Slab'), availableBytes: bytes('MemAvailable') };
}

/**
 * Memory `pid` holds alone (Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup) and what it
 * shares with other processes (Shared_*: the node binary's pages, mapped once for every process of
 * it). RSS counts the shared pages in every process; the machine holds them once. Null when unreadable.
 */
export function privateSharedBytes(pid: number): { private: number; shared: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
    const own = kb('Private_Clean') + kb('Private_Dirty');
    const shared = kb('Shared_Clean') + kb('Shared_Dirty');
    return Number.isFinite(own) && Number.isFinite(shared) ? { private: own * 1024, shared: shared * 1024 } : null;
  } catch {
    return null;
  }
}

/** Open file descriptors of `pid`; null when it is gone or /proc is not there. */
export function openFileCount(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/**
 * Open files a check may find above a server's count at rest: the keep-alive connections of the
 * fetches that read its /stats and /health.
 */
export const CHECK_FILES = 2;
