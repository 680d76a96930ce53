/**
 * The ramp starts when every worker is prepared, not at a fixed moment after the fork
 * (clients/swarm/swarm.ts, launchWhenPrepared): a worker that loads slowly must not begin by launching the
 * clients already due in one burst. Made slow here by a module that busies its loader for 800 ms.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Swarm, type LaunchEvent } from '../clients/swarm/swarm.js';
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

  it('emits the launch moment, at which the first connect is made', async () => {
    // A relay that notes when each connection reaches it, then carries it to the server.
    const accepted: number[] = [];
    const relay = createServer((socket) => {
      accepted.push(Date.now());
      const upstream = connect(Number(new URL(server.ws).port), '127.0.0.1');
      socket.pipe(upstream).pipe(socket);
      for (const s of [socket, upstream]) s.on('error', () => { socket.destroy(); upstream.destroy(); });
    });
    relay.listen(0, '127.0.0.1');
    await once(relay, 'listening');
    const previousArgs = process.env.SWARM_WORKER_NODE_ARGS;
    process.env.SWARM_WORKER_NODE_ARGS = SLOW_LOAD;
    try {
      const swarm = new Swarm({ url: `ws://127.0.0.1:${(relay.address() as AddressInfo).port}/echo?rounds=1`, clients: 10, workers: 2, ramp: 0.5, delay: 0.1, rounds: 1 });
      let startedAt = 0;
      let launchedAt = 0;
      swarm.on('start', (event: { startedAt: number }) => (startedAt = event.startedAt));
      swarm.on('launch', (event: LaunchEvent) => (launchedAt = event.at));
      const summary = await swarm.run();
      assert.equal(summary.counters.completed, 10);
      // The workers took 0.8 s to load: the ramp began after that, not at a fixed moment after the start.
      assert.ok(launchedAt >= startedAt + 800, `launch ${launchedAt - startedAt} ms after the start`);
      const first = Math.min(...accepted);
      // Client 0's slot is the launch moment: its connect is made then (a few ms for the loop and the relay).
      assert.ok(first >= launchedAt && first < launchedAt + 100, `first connect ${first - launchedAt} ms after the launch`);
    } finally {
      if (previousArgs === undefined) delete process.env.SWARM_WORKER_NODE_ARGS;
      else process.env.SWARM_WORKER_NODE_ARGS = previousArgs;
      relay.close();
    }
  });
});
