/**
 * A swarm across machines through Redis (clients/agents/coordinator.ts, clients/agents/agent.ts): three agents on this
 * machine, each connecting from its own source address, give the same totals as one swarm; an agent
 * that dies mid-run is named in the summary and the run still ends by itself. The agents are real
 * `swarm agent` processes and the Redis is the machine's; every key is under a prefix of this run.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Swarm } from '../clients/swarm/swarm.js';
import { echoServer, type FakeServer } from './helpers/fake-servers.js';
import { REDIS, startAgent, stopAgents, type AgentProcess } from './helpers/agents.js';

describe('a swarm across agents, coordinated through Redis', () => {
  const key = `swarm-test-${randomBytes(4).toString('hex')}`;
  const agents: AgentProcess[] = [];
  let server: FakeServer;

  before(async () => {
    server = await echoServer({ delayMs: 0, rounds: 2 });
    agents.push(...(await Promise.all(['a1', 'a2', 'a3'].map((name, i) => startAgent(key, name, `127.0.0.${i + 2}`)))));
  });
  after(async () => {
    await stopAgents(agents, key);
    await server.close();
  });

  it('three agents from their own source addresses give the same totals as one swarm', async () => {
    const options = { url: `${server.url}/echo`, clients: 300, ramp: 1, delay: 0.3, rounds: 2 };
    const local = await new Swarm(options).run();
    const before = { ...server.counts };
    // Each agent announces itself again once its workers of the run are gone (listened for from now on).
    const waitingAgain = Promise.all(agents.map((a) => a.line(/waiting for a run/)));
    const spread = await new Swarm({ ...options, agents: 3, coordinator: REDIS, coordinatorKey: key, agentWait: 10 }).run();
    for (const summary of [local, spread]) {
      assert.equal(summary.counters.completed, 300);
      assert.equal(summary.rtt?.count, 600);
      assert.equal(summary.connect?.count, 300);
    }
    assert.deepEqual(
      { sent: spread.counters.sent, received: spread.counters.received, closed: spread.counters.closed, errors: spread.counters.errors },
      { sent: local.counters.sent, received: local.counters.received, closed: local.counters.closed, errors: local.counters.errors },
    );
    assert.equal(spread.options.workers, 3);
    assert.deepEqual(spread.lostAgents, []);
    for (const address of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) {
      assert.equal((server.counts[`from ${address}`] ?? 0) - (before[`from ${address}`] ?? 0), 100, `100 clients from ${address}`);
    }
    await waitingAgain;
  });

  it('an agent that dies mid-run is named, its clients count as failed, and the run ends by itself', async () => {
    const running = new Swarm({ url: `${server.url}/echo`, clients: 300, ramp: 1, delay: 1, rounds: 2, agents: 3, coordinator: REDIS, coordinatorKey: key, agentWait: 10 });
    const started = agents[1].line(/worker \d+ started/);
    const done = running.run();
    await started;
    agents[1].child.kill('SIGKILL');
    const summary = await done;
    assert.deepEqual(summary.lostAgents, ['a2']);
    assert.equal(summary.counters.completed, 200);
    assert.equal(summary.counters.errors.other, 100);
  });

  it('fails at once, naming the URL and the error, when the coordinator cannot be reached', async () => {
    await assert.rejects(
      new Swarm({ url: `${server.url}/echo`, clients: 10, agents: 1, coordinator: 'redis://127.0.0.1:1' }).run(),
      /^Error: --coordinator redis:\/\/127\.0\.0\.1:1: connect ECONNREFUSED 127\.0\.0\.1:1$/,
    );
  });

  it('fails at once, naming how many came, when fewer agents are there than asked for', async () => {
    await assert.rejects(
      new Swarm({ url: `${server.url}/echo`, clients: 10, agents: 5, coordinator: REDIS, coordinatorKey: key, agentWait: 2 }).run(),
      /only 2 of 5 agents came within 2 s \((a1, a3|a3, a1)\)/,
    );
  });
});
