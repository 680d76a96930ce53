/**
 * A user scenario through agents (clients/agents/): the docs' chat-room example at 10,000 clients on
 * two local `swarm agent` processes, each from its own source address; the named timings and checks
 * their workers report come back through Redis into one summary, as the run's own figures do.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Swarm } from '../clients/swarm/swarm.js';
import { REDIS, startAgent, stopAgents, type AgentProcess } from './helpers/agents.js';
import { spawnServer, type ServerChild } from './helpers/process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('a user scenario through two agents', () => {
  const key = `swarm-test-${randomBytes(4).toString('hex')}`;
  const agents: AgentProcess[] = [];
  let server: ServerChild;

  before(async () => {
    server = await spawnServer([]);
    agents.push(...(await Promise.all(['u1', 'u2'].map((name, i) => startAgent(key, name, `127.0.0.${i + 5}`)))));
  });
  after(async () => {
    await stopAgents(agents, key);
    await server.kill();
  });

  it('the chat-room example with 10,000 clients: every timing and check of both agents in one summary', async () => {
    const summary = await new Swarm({
      url: server.ws, scenario: join(ROOT, 'examples/scenarios/chat-room.ts'), data: join(ROOT, 'examples/scenarios/rooms.csv'),
      clients: 10_000, ramp: 4, rounds: 2, agents: 2, coordinator: REDIS, coordinatorKey: key, agentWait: 10,
    }).run();
    assert.deepEqual(summary.lostAgents, []);
    assert.equal(summary.options.workers, 2);
    assert.equal(summary.counters.completed, 10_000);
    assert.deepEqual(Object.fromEntries(Object.entries(summary.timings).map(([name, l]) => [name, l.count])), { publish: 20_000, roundtrip: 20_000, subscribe: 10_000 });
    assert.deepEqual(summary.checks, { 'welcome names the connection': { passed: 10_000, failed: 0 }, 'closed cleanly': { passed: 10_000, failed: 0 } });
  });
});
