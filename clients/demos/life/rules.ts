/**
 * Conway's Game of Life on a cyclic grid, as the Life demo's cells and its check share it: the seeded
 * first generation, the rule, a reference simulation, and the channel names. The server knows none of
 * this: it only relays what the cells publish.
 */

/** A cell's index on a `size` x `size` grid: y * size + x. */
export const cellIndex = (x: number, y: number, size: number): number => ((y + size) % size) * size + ((x + size) % size);

/** The channel a cell publishes its state on. */
export const cellChannel = (index: number): string => `life:${index}`;

/** The channel every cell also publishes on for the page that draws the grid. */
export const BOARD_CHANNEL = 'life:board';

/** The 8 neighbours of a cell (wrapping around the edges). */
export function neighbours(index: number, size: number): number[] {
  const x = index % size;
  const y = Math.floor(index / size);
  const out: number[] = [];
  for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) if (dx !== 0 || dy !== 0) out.push(cellIndex(x + dx, y + dy, size));
  return out;
}

/** The next state of a cell from its own and its live neighbours' count. */
export const nextState = (alive: boolean, liveNeighbours: number): boolean => liveNeighbours === 3 || (alive && liveNeighbours === 2);

/** Generation 0 from a seed: each cell alive with probability `density` (mulberry32, so every process agrees). */
export function firstGeneration(size: number, seed: number, density = 0.3): Uint8Array {
  let state = seed >>> 0;
  const random = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Uint8Array.from({ length: size * size }, () => (random() < density ? 1 : 0));
}

/** One generation of the whole grid (1 alive, 0 dead). */
export function step(grid: Uint8Array, size: number): Uint8Array {
  const next = new Uint8Array(grid.length);
  for (let i = 0; i < grid.length; i++) {
    let live = 0;
    for (const n of neighbours(i, size)) live += grid[n];
    next[i] = nextState(grid[i] === 1, live) ? 1 : 0;
  }
  return next;
}

/** The reference: `generations` steps of the whole grid in one process, from the seeded first generation. */
export function simulate(size: number, seed: number, generations: number): Uint8Array {
  let grid: Uint8Array = firstGeneration(size, seed);
  for (let g = 0; g < generations; g++) grid = step(grid, size);
  return grid;
}
