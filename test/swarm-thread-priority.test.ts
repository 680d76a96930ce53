/**
 * A swarm worker's helper threads (V8's compiler and GC helpers) run at the lowest priority and its
 * main thread, which times the round trips, at the swarm's own (clients/host/thread-priority.ts). Read from
 * /proc of the worker processes while a swarm run is going.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { childPids, statFields } from '../clients/host/proc.js';
import { startServer, type RunningServer } from './helpers/server.js';
import { SWARM } from './helpers/swarm.js';

/** The nice value of every thread of `pid`, the main thread's first; null once it is gone. */
function threadNices(pid: number): { main: number; helpers: number[] } | null {
  try {
    const nice = (tid: string): number => Number(statFields(`/proc/${pid}/task/${tid}/stat`)[16]);
    const helpers = readdirSync(`/proc/${pid}/task`).filter((tid) => Number(tid) !== pid);
    return { main: nice(String(pid)), helpers: helpers.map(nice) };
  } catch {
    return null;
  }
}

function isWorker(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('worker.js');
  } catch {
    return false;
  }
}

describe('swarm worker thread priority', () => {
  let server: RunningServer;
  before(async () => (server = await startServer()));
  after(() => server.close());

  it('lowers every helper thread of each worker to nice 19 and leaves the main thread at the swarm\'s own', async () => {
    const ownNice = threadNices(process.pid)!.main;
    // Two workers whose 20 clients sleep 1.5 s twice: long enough to read their threads.
    const swarm = spawn(process.execPath, [SWARM, '--url', `${server.ws}/echo?rounds=2`, '--clients', '20', '--workers', '2', '--ramp', '0.2', '--delay', '1.5', '--rounds', '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    swarm.stdout.on('data', (chunk: Buffer) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => swarm.once('exit', resolve));
    const seen = new Map<number, { main: number; helpers: number[] }>();
    let done = false;
    void exited.then(() => (done = true));
    // Poll until both workers have been read after their start-up (they lower their helpers as their
    // module loads, before they report); the run ends by itself either way.
    while (!done && [...seen.values()].filter((t) => t.helpers.length > 0 && t.helpers.every((n) => n === 19)).length < 2) {
      for (const pid of childPids(swarm.pid!).filter(isWorker)) {
        const nices = threadNices(pid);
        if (nices) seen.set(pid, nices);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(await exited, 0, output);
    assert.match(output, /completed 20\/20/);
    assert.equal(seen.size, 2, `two workers read: ${[...seen.keys()].join(', ')}`);
    for (const [pid, { main, helpers }] of seen) {
      assert.equal(main, ownNice, `worker ${pid}'s main thread at nice ${main}`);
      assert.ok(helpers.length >= 1, `worker ${pid} has helper threads`);
      assert.deepEqual(helpers, helpers.map(() => 19), `worker ${pid}'s helper threads' nice values: ${helpers.join(', ')}`);
    }
  });
});
