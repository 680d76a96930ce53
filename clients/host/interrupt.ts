/**
 * Ctrl-C during a run keeps what was measured. The first SIGINT (or SIGTERM) stops every running swarm
 * the way its timeout would: the workers close their sockets and send their last reports, `run()`
 * resolves with a summary marked `interrupted`, and the caller prints it and writes its CSVs. A second
 * signal exits at once (130).
 *
 * A program that runs swarms calls {@link catchInterrupts} once, registers each swarm with
 * {@link interruptible} while it runs, and asks {@link interrupted} between steps so it starts no new one.
 */

/** What a swarm must offer to be stopped early. */
export interface Interruptible {
  interrupt(reason: string): void;
}

const running = new Set<Interruptible>();
let reason: string | null = null;
let installed = false;

/** Installs the SIGINT/SIGTERM handlers (once); `onSecond` runs before the exit a second signal causes. */
export function catchInterrupts(onSecond: () => void = () => undefined): void {
  if (installed) return;
  installed = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (reason !== null) {
        console.error(`\n${signal} again: exiting without waiting`);
        onSecond();
        process.exit(130);
      }
      reason = signal;
      console.error(`\n${signal}: stopping the run; the summary of what was measured follows (${signal} again exits at once)`);
      for (const swarm of running) swarm.interrupt(signal);
    });
  }
}

/** Registers a swarm for the time it runs; returns the function that unregisters it. */
export function interruptible(swarm: Interruptible): () => void {
  if (reason !== null) swarm.interrupt(reason);
  running.add(swarm);
  return () => running.delete(swarm);
}

/** The signal that interrupted the program, or null. */
export function interrupted(): string | null {
  return reason;
}

/** Waits `ms`, or less when the program is interrupted meanwhile. */
export function interruptibleSleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(finish, ms);
    const done = interruptible({ interrupt: finish });
    function finish(): void {
      clearTimeout(timer);
      done();
      resolve();
    }
  });
}
