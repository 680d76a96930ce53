/**
 * The Life demo: the rule and the reference simulation on known patterns, and `demo-life --check` in a
 * small form (144 cell clients, 30 generations), whose cells must end with the reference's grid.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cellIndex, firstGeneration, neighbours, simulate, step } from '../clients/demos/life/rules.js';

const LIFE = fileURLToPath(new URL('../bench/life.js', import.meta.url));

/** `steps` generations from a given grid. */
const stepFrom = (cells: number[], size: number, steps: number): number[] => {
  let grid: Uint8Array = Uint8Array.from(cells);
  for (let s = 0; s < steps; s++) grid = step(grid, size);
  return [...grid];
};

const shape = (size: number, points: [number, number][]): number[] => {
  const grid = new Array<number>(size * size).fill(0);
  for (const [x, y] of points) grid[cellIndex(x, y, size)] = 1;
  return grid;
};

describe('Life', () => {
  it('neighbours wrap around the edges of the cyclic grid', () => {
    assert.deepEqual(neighbours(0, 4).sort((a, b) => a - b), [1, 3, 4, 5, 7, 12, 13, 15]);
  });

  it('a blinker turns every generation, a glider travels across the edge and comes back', () => {
    const blinker = shape(5, [[1, 2], [2, 2], [3, 2]]);
    assert.deepEqual(stepFrom(blinker, 5, 1), shape(5, [[2, 1], [2, 2], [2, 3]]));
    assert.deepEqual(stepFrom(blinker, 5, 2), blinker);
    const glider = shape(8, [[1, 0], [2, 1], [0, 2], [1, 2], [2, 2]]);
    assert.deepEqual(stepFrom(glider, 8, 4), shape(8, [[2, 1], [3, 2], [1, 3], [2, 3], [3, 3]]), 'one cell down and right after 4');
    assert.deepEqual(stepFrom(glider, 8, 32), glider, 'around the torus in 32');
  });

  it('the reference simulation steps the seeded first generation', () => {
    const first = firstGeneration(16, 7);
    assert.ok(first.some((a) => a === 1) && first.some((a) => a === 0));
    assert.deepEqual([...simulate(16, 7, 9)], stepFrom([...first], 16, 9));
  });

  it('demo-life --check: 144 cell clients end with the reference grid and say how fast', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [LIFE, '--check', '--size', '12', '--generations', '30', '--workers', '2'], { timeout: 50_000 });
    assert.match(stdout, /144 cell clients in 2 processes, 1152 subscriptions/);
    assert.match(stdout, /^30 generations in [\d.]+ s: [\d.]+ generations\/s, \d+ deliveries\/s$/m);
    assert.match(stdout, /saturated: \w+/);
    assert.match(stdout, /check PASS: the final grid equals the reference simulation \(seed 42, 30 generations\)/);
  });
});
