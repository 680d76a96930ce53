/**
 * The ramp starts when every worker is prepared, not at a fixed moment after the fork
 * (clients/engine.ts, launchWhenPrepared): a worker that loads slowly must not begin by launching the
 * clients already due in one burst. Made slow here by a module that busies its loader for 800 ms.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type RunningServer } from './helpers/server.js';
import { runSwarm } from './helpers/swarm.js';

/** Busies the worker's loader for 800 ms before the worker's own module runs (no spaces: the flag is split on them). */
const SLOW_LOAD = '--import=data:text/javascript,((end)=>{while(Date.now()<end);})(Date.now()+800)';

describe('the swarm starts its ramp when its workers are ready', () => {
  let server: RunningServer;
  before(async () => (server = await startServer()));
  after(() => server.close());

  it('keeps the offered connect rate with workers that take 0.8 s to load', async () => {
    const stdout = await runSwarm(['--url', `${server.ws}/echo?rounds=1`, '--clients', '100', '--workers', '2', '--ramp', '1', '--delay', '0.2', '--rounds', '1'], SLOW_LOAD);
    assert.match(stdout, /completed 100\/100/);
    const rate = Number(/^connect .* rate (\d+)\/s \(ramp offered 100\)/m.exec(stdout)?.[1]);
    // Launched in a burst, the 60 clients due while the workers loaded would all open at once, and 100
    // connects would span about 0.4 s (250/s). Paced from the launch, they span the whole second.
    assert.ok(rate > 0 && rate <= 120, `connect rate ${rate}/s against 100/s offered:\n${stdout}`);
  });
});
