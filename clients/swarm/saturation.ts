/**
 * Which side of a load test ran out of CPU: the one saturation verdict every benchmark prints. A
 * process at or above SATURATED_CPU_PCT of one core is saturated; so is the machine when the sum of
 * every process's share reaches that share of all its cores (swarm and server share them here).
 */
import { availableParallelism } from 'node:os';

/** A process at or above this share of one core counts as saturated. */
export const SATURATED_CPU_PCT = 90;

export type Saturation = 'server' | 'client' | 'both' | 'machine' | 'neither' | 'client (server unknown)' | 'unknown';

/**
 * `serverPct`: the busiest server process's peak share of a core (null when it could not be read);
 * `clientPct`: the busiest load process's; `machinePct`: the peak sum over the machine, if known.
 */
export function saturation(serverPct: number | null, clientPct: number, machinePct = 0): Saturation {
  const clientHot = clientPct >= SATURATED_CPU_PCT;
  if (serverPct === null || !Number.isFinite(serverPct)) return clientHot ? 'client (server unknown)' : 'unknown';
  const serverHot = serverPct >= SATURATED_CPU_PCT;
  if (serverHot && clientHot) return 'both';
  if (serverHot) return 'server';
  if (clientHot) return 'client';
  return machinePct >= SATURATED_CPU_PCT * availableParallelism() ? 'machine' : 'neither';
}
