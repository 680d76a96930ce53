/**
 * Server memory per connection from a ramp: the slope of RSS over connected clients (Theil-Sen, the
 * median of the pairwise slopes), from the seconds in which the count rose. A single before/after
 * difference drowns in the V8 heap's swings (several MiB either way); the slope over the ramp does not.
 * A fit is given only when it means something: at least 5 points covering at least a fifth of the peak,
 * and RSS that grew with the connections (a falling RSS, a heap shrinking after a GC, says nothing of
 * what a connection costs).
 */

/**
 * The fit, or why there is none (said as it is printed: "per connection: N/A (<why>)"). `baseBytes` is
 * the line's value at no connection (the median of RSS - slope x connected): what the processes hold
 * for themselves, read off the same ramp.
 */
export type MemoryFit = { bytesPerConnection: number; baseBytes: number; why: null } | { bytesPerConnection: null; baseBytes: null; why: string };

/** `points`: [connected, rss bytes] of each second in which the count rose; `peak`: the most connected. */
export function fitMemoryPerConnection(points: readonly (readonly [number, number])[], peak: number): MemoryFit {
  const none = (why: string): MemoryFit => ({ bytesPerConnection: null, baseBytes: null, why });
  if (points.length < 5) return none('ramp too short to fit');
  const span = points.at(-1)![0] - points[0][0];
  if (span <= 0 || span < 0.2 * peak) return none('ramp too short to fit');
  const step = Math.max(1, Math.floor(points.length / 200));
  const used = points.filter((_, i) => i % step === 0);
  const slopes: number[] = [];
  for (let i = 0; i < used.length; i++) {
    for (let j = i + 1; j < used.length; j++) {
      const dx = used[j][0] - used[i][0];
      if (dx > 0) slopes.push((used[j][1] - used[i][1]) / dx);
    }
  }
  if (slopes.length === 0) return none('ramp too short to fit');
  const slope = median(slopes);
  if (!(slope > 0)) return none('RSS did not grow with the connections during the ramp');
  return { bytesPerConnection: slope, baseBytes: median(points.map(([connected, bytes]) => bytes - slope * connected)), why: null };
}

function median(values: number[]): number {
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)];
}
