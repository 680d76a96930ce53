/**
 * Presence: who is subscribed, asked by a subscriber; join/leave events for those who ask; across two
 * instances through the machine's Redis, where an instance killed with SIGKILL drops out of the member
 * list within two heartbeats.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { TestClient } from './helpers/client.js';
import { spawnServer } from './helpers/process.js';
import { startServer } from './helpers/server.js';
import { REDIS_URL, requireRedis } from './helpers/services.js';

async function connect(base: string): Promise<{ client: TestClient; id: string }> {
  const { client, welcome } = await TestClient.pubsub(base);
  return { client, id: welcome.connection as string };
}

const byConnection = (members: { connection: string }[]): string[] => members.map((m) => m.connection).sort();

describe('presence in one process', () => {
  it('lists the subscribers to a subscriber, sends join and leave to those who asked, refuses the rest', async () => {
    const server = await startServer({ presence: true });
    try {
      const a = await connect(server.ws);
      assert.deepEqual(await a.client.request({ action: 'subscribe', payload: { channel: 'room', join_leave: true }, id: 1 }), { event: 'subscribed', channel: 'room', id: 1 });
      const own = await a.client.next();
      assert.deepEqual([own.event, own.channel, own.member.connection, own.member.user, typeof own.member.session], ['join', 'room', a.id, null, 'string']);
      const b = await connect(server.ws);
      await b.client.request({ action: 'subscribe', payload: { channel: 'room' }, id: 1 });
      const joined = await a.client.next();
      assert.equal(joined.event, 'join');
      assert.equal(joined.member.connection, b.id);
      const answer = await b.client.request({ action: 'presence', payload: { channel: 'room' }, id: 2 });
      assert.equal(answer.event, 'presence');
      assert.equal(answer.id, 2);
      assert.deepEqual(byConnection(answer.members), [a.id, b.id].sort());
      assert.ok(await b.client.silentFor(100), 'b did not ask for join/leave');

      const c = await connect(server.ws);
      const refused = await c.client.request({ action: 'presence', payload: { channel: 'room' }, id: 3 });
      assert.deepEqual([refused.event, refused.code, refused.id], ['error', 'forbidden', 3]);

      await b.client.close();
      const left = await a.client.next();
      assert.deepEqual([left.event, left.member.connection], ['leave', b.id]);
      await a.client.request({ action: 'unsubscribe', payload: { channel: 'room' }, id: 4 });
      await c.client.request({ action: 'subscribe', payload: { channel: 'room' }, id: 5 });
      assert.deepEqual(byConnection((await c.client.request({ action: 'presence', payload: { channel: 'room' }, id: 6 })).members), [c.id]);
      await Promise.all([a.client.close(), c.client.close()]);
    } finally {
      await server.close();
    }
  });

  it('without --presence the action is refused and join_leave is accepted but sends nothing', async () => {
    const server = await startServer();
    try {
      const a = await connect(server.ws);
      await a.client.request({ action: 'subscribe', payload: { channel: 'room', join_leave: true }, id: 1 });
      const refused = await a.client.request({ action: 'presence', payload: { channel: 'room' }, id: 2 });
      assert.deepEqual([refused.event, refused.code], ['error', 'bad_request']);
      const bad = await a.client.request({ action: 'subscribe', payload: { channel: 'room', join_leave: 'yes' }, id: 3 });
      assert.deepEqual([bad.event, bad.code], ['error', 'bad_request']);
      const b = await connect(server.ws);
      await b.client.request({ action: 'subscribe', payload: { channel: 'room' }, id: 1 });
      assert.ok(await a.client.silentFor(150));
      await Promise.all([a.client.close(), b.client.close()]);
    } finally {
      await server.close();
    }
  });
});

describe('presence across instances (Redis)', () => {
  it('lists members of both instances, carries join events across, and drops a SIGKILLed instance within two heartbeats', async () => {
    await requireRedis();
    const heartbeat = 300;
    const flags = ['--redis', REDIS_URL, '--prefix', `presence-${randomBytes(4).toString('hex')}`, '--presence', '--presence-heartbeat', String(heartbeat)];
    const one = await spawnServer(flags);
    const two = await spawnServer(flags);
    try {
      const a = await connect(one.ws);
      a.client.send({ action: 'subscribe', payload: { channel: 'room', join_leave: true }, id: 1 });
      // The ack and its own join, in either order: the join travels through Redis, the ack waits for
      // the instance's subscription there.
      assert.deepEqual([(await a.client.next()).event, (await a.client.next()).event].sort(), ['join', 'subscribed']);
      const b = await connect(two.ws);
      await b.client.request({ action: 'subscribe', payload: { channel: 'room' }, id: 1 });
      const joined = await a.client.next();
      assert.deepEqual([joined.event, joined.member.connection], ['join', b.id]);
      const ask = async (): Promise<string[]> => byConnection((await a.client.request({ action: 'presence', payload: { channel: 'room' }, id: 2 })).members);
      assert.deepEqual(await ask(), [a.id, b.id].sort());

      two.child.kill('SIGKILL');
      const killedAt = Date.now();
      await two.exited;
      let gone = 0;
      while (Date.now() - killedAt < 10 * heartbeat) {
        if ((await ask()).length === 1) {
          gone = Date.now() - killedAt;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      assert.ok(gone > 0, 'the killed instance dropped out');
      // Within two heartbeats of the kill, give or take one poll.
      assert.ok(gone <= 2 * heartbeat + 100, `dropped out after ${gone} ms; two heartbeats are ${2 * heartbeat} ms`);
      assert.deepEqual(await ask(), [a.id]);
      await a.client.close();
    } finally {
      await Promise.all([one.kill(), two.kill()]);
    }
  });
});
