/**
 * Ports for the test's own servers, without a probe-and-release race: the server's own bind is the
 * probe. A candidate is drawn at random below the kernel's ephemeral range (so no outgoing connection
 * of any test is ever handed it, before the bind or while a killed server is down), the server is
 * started on it, and when that start fails because the port was taken (by another test file running
 * at the same time), another candidate is tried.
 */
import { readFileSync } from 'node:fs';

const LOW = 10_000;
const TRIES = 50;

/** The kernel's range for outgoing connections' local ports (ip_local_port_range). */
export function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low > 0 && high >= low) return [low, high];
  } catch {
    // not Linux: the IANA range
  }
  return [49152, 65535];
}

/** Matches what servers print or throw when their port is taken. */
export const PORT_TAKEN = /EADDRINUSE|address already in use|in use or not allowed|bind\(\).*failed/i;

/**
 * Calls `start(port)` with candidate ports until one start succeeds, and returns what it returned.
 * `start` must reject with an error whose message matches {@link PORT_TAKEN} when the port was taken
 * (and clean up what it started); any other rejection is final. With `span`, ports port..port+span-1
 * are the server's (consecutive worker ports), and with `alsoFree`, port + alsoFree must lie below the
 * ephemeral range as well (a Redis Cluster node's bus listens on port + 10000).
 */
export async function onFreePort<T>(start: (port: number) => Promise<T>, { span = 1, alsoFree = 0 } = {}): Promise<T> {
  const [ephemeralLow] = ephemeralRange();
  const high = ephemeralLow - span - alsoFree;
  if (high <= LOW) throw new Error(`the ephemeral ports start at ${ephemeralLow}: no room below them for a test server's port`);
  let last: Error | null = null;
  for (let attempt = 0; attempt < TRIES; attempt++) {
    const port = LOW + Math.floor(Math.random() * (high - LOW));
    try {
      return await start(port);
    } catch (err) {
      if (!PORT_TAKEN.test((err as Error).message)) throw err;
      last = err as Error;
    }
  }
  throw new Error(`no free port below ${ephemeralLow} after ${TRIES} tries; last: ${last?.message}`);
}
