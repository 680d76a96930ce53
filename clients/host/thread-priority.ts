/**
 * A swarm worker's helper threads run at the lowest priority, so they take only CPU time that nothing
 * else wants. A worker runs its clients, and times every round trip, on its main thread; V8 runs its
 * optimizing compiler and parts of its garbage collector on helper threads. Where a code path becomes
 * hot in every client at once (bench-c10k's last round, when 5,000 clients a second start to close),
 * both workers compiled on their helpers together: on 2 cores those took about half a core for the
 * round's first 600 ms, the server waited for a core 41% of that time, and the round trips of those
 * moments made the run's whole p99. The main thread keeps the process's own priority: lowering it too
 * would add the swarm's waits to the figures it reports.
 *
 * Threads started later (libuv's pool, for DNS lookups) are started by the main thread and keep its
 * priority; V8's helpers exist from the process's start, so one pass at start-up finds them all.
 */
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';

/** Linux's lowest scheduling priority (the highest nice value). */
const LOWEST_PRIORITY = 19;

/**
 * Lowers every thread of this process but the main one to the lowest priority and returns how many it
 * lowered. Linux only (per-thread priority through /proc/self/task); elsewhere it changes nothing and
 * returns 0.
 */
export function lowerHelperThreads(): number {
  let threads: string[];
  try {
    threads = readdirSync('/proc/self/task');
  } catch {
    return 0;
  }
  let lowered = 0;
  for (const thread of threads) {
    const tid = Number(thread);
    if (tid === process.pid) continue;
    try {
      // On Linux, setpriority() with a thread id sets that thread's priority alone.
      setPriority(tid, LOWEST_PRIORITY);
      lowered++;
    } catch {
      // The thread ended between the listing and here.
    }
  }
  return lowered;
}
