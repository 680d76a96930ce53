/**
 * One contract, every driver: the Broker interface's stated guarantees (broker/types.ts and each
 * driver's TSDoc), run alike against the in-memory driver, one Redis and a Redis Cluster of the test's
 * own. Two brokers on one backend stand for two server instances; the local driver has only one.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import calculateSlot from 'cluster-key-slot';
import { createBroker, type Broker } from '../server/broker/index.js';
import { channelRef, redisName, parseChannel, type ChannelRef } from '../server/protocol/index.js';
import { redisCluster, redisProcess, type RedisClusterProcess, type RedisProcess } from './helpers/redis-process.js';
import { eventually } from './helpers/server.js';

/** A channel as the broker takes it, parsed. */
const ch = (name: string): ChannelRef => channelRef(name)!;

/** A broker with what it delivered recorded per channel. */
interface Instance {
  broker: Broker;
  got: Map<string, string[]>;
}

function instance(broker: Broker): Instance {
  const got = new Map<string, string[]>();
  broker.onDeliver((channel, json) => {
    const list = got.get(channel) ?? [];
    list.push(json);
    got.set(channel, list);
  });
  return { broker, got };
}

const received = (i: Instance, channel: string): string[] => i.got.get(channel) ?? [];

/** How the suite drives one driver's backend. */
interface Driver {
  name: string;
  /** Whether two brokers bridge (the local driver is one process). */
  bridges: boolean;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A new broker on the backend, with its own prefix `prefix`. */
  make(prefix: string): Broker;
  /** Takes down the part of the backend that carries `name` (a Redis name), and brings it back. */
  down?(name: string): Promise<void>;
  up?(name: string): Promise<void>;
  /** Makes the backend refuse SUBSCRIBE (and PUBLISH) of `name`, and lifts that again. */
  deny?(name: string): Promise<void>;
  allow?(): Promise<void>;
}

const cli = (port: number, ...args: string[]): Promise<string> =>
  promisify(execFile)('redis-cli', ['-p', String(port), ...args]).then((r) => r.stdout.trim());

const local: Driver = {
  name: 'local',
  bridges: false,
  setup: async () => undefined,
  teardown: async () => undefined,
  make: () => createBroker({ expire: 0, redis: null, prefix: '' }),
};

let redis: RedisProcess;
const single: Driver = {
  name: 'redis',
  bridges: true,
  async setup() {
    redis = await redisProcess();
  },
  teardown: async () => redis?.kill(),
  make: (prefix) => createBroker({ expire: 0, redis: redis.url, prefix }),
  down: () => redis.kill(),
  up: () => redis.start(),
  // The default user of the test's own Redis loses the channel, so SUBSCRIBE is refused (NOPERM).
  deny: async (name) => void (await cli(redis.port, 'ACL', 'SETUSER', 'default', 'resetchannels', `&${name}x*`)),
  allow: async () => void (await cli(redis.port, 'ACL', 'SETUSER', 'default', 'allchannels')),
};

let cluster: RedisClusterProcess;
/** The index of the node that owns a name's slot, from the slot map of the first node that answers. */
async function owner(name: string): Promise<number> {
  const slot = calculateSlot(name);
  for (const port of cluster.ports) {
    const nodes = await cli(port, 'CLUSTER', 'NODES').catch(() => null);
    if (nodes === null) continue;
    for (const line of nodes.split('\n')) {
      const fields = line.split(' ');
      const owns = fields.slice(8).some((range) => {
        const [from, to] = range.split('-').map(Number);
        return slot >= from && slot <= (to ?? from);
      });
      if (owns) return cluster.ports.indexOf(Number(/:(\d+)@/.exec(fields[1])![1]));
    }
  }
  throw new Error(`no node owns slot ${slot}`);
}
let downed = -1;
const clustered: Driver = {
  name: 'redis-cluster',
  bridges: true,
  async setup() {
    cluster = await redisCluster(3);
  },
  teardown: async () => cluster?.stop(),
  make: (prefix) => createBroker({ expire: 0, redis: null, redisCluster: cluster.nodes.split(',')[0], prefix }),
  down: async (name) => cluster.killNode((downed = await owner(name))),
  up: async () => cluster.startNode(downed),
  deny: async (name) => {
    // Only the channel's shard: SSUBSCRIBE goes there (and a client of another node keeps its rights).
    await cli(cluster.ports[await owner(name)], 'ACL', 'SETUSER', 'default', 'resetchannels', `&${name}x*`);
  },
  allow: async () => {
    for (const port of cluster.ports) await cli(port, 'ACL', 'SETUSER', 'default', 'allchannels');
  },
};

async function ready(...brokers: Broker[]): Promise<void> {
  await eventually(() => brokers.every((b) => b.state() === 'ready'), 10_000);
}

for (const driver of [local, single, clustered]) {
  describe(`Broker contract: ${driver.name}`, () => {
    const brokers: Broker[] = [];
    const make = (prefix: string): Instance => {
      const broker = driver.make(prefix);
      brokers.push(broker);
      return instance(broker);
    };
    /** Two instances on one fresh prefix (the same one twice for a driver that bridges nothing), both ready. */
    const pair = async (): Promise<{ a: Instance; b: Instance }> => {
      const prefix = `c${randomBytes(3).toString('hex')}`;
      const a = make(prefix);
      const b = driver.bridges ? make(prefix) : a;
      await ready(a.broker, b.broker);
      return { a, b };
    };
    before(() => driver.setup());
    after(async () => {
      await Promise.all(brokers.map((b) => b.close()));
      await driver.teardown();
    });

    it('delivers one publisher\'s messages once each, in order, on every instance; flush fences them', async () => {
      const { a, b } = await pair();
      a.broker.retain(ch('news'));
      if (b !== a) b.broker.retain(ch('news'));
      await eventually(() => a.broker.counters().channels_unconfirmed === undefined || (a.broker.counters().channels_unconfirmed === 0 && b.broker.counters().channels_unconfirmed === 0), 5000);
      const sent = Array.from({ length: 500 }, (_, n) => JSON.stringify({ n }));
      // Never rejects: every publish resolves.
      await Promise.all(sent.map((json) => a.broker.publish(ch('news'), json)));
      await a.broker.flush();
      await b.broker.flush();
      assert.deepEqual(received(a, 'news'), sent);
      if (b !== a) assert.deepEqual(received(b, 'news'), sent);
    });

    it('fence: what another instance had published (and was acked) when it was called has been delivered here', async () => {
      const { a, b } = await pair();
      b.broker.retain(ch('fenced'));
      await b.broker.subscribed(ch('fenced'));
      for (let round = 1; round <= 20; round++) {
        const sent = Array.from({ length: 50 }, (_, n) => JSON.stringify({ round, n }));
        await Promise.all(sent.map((json) => a.broker.publish(ch('fenced'), json)));
        await b.broker.fence();
        assert.deepEqual(received(b, 'fenced').slice(-50), sent, `round ${round}: all 50 in by the fence`);
      }
    });

    it('publish resolves with no position: without --history no driver keeps one', async () => {
      const { a } = await pair();
      assert.equal(await a.broker.publish(ch('plain'), '1'), undefined);
    });

    it('flush resolves at once with nothing published', async () => {
      const a = make(`c${randomBytes(3).toString('hex')}`);
      await ready(a.broker);
      await a.broker.flush();
    });

    if (driver.bridges) {
      it('release stops the channel reaching that instance; retain brings it back', async () => {
        const prefix = `c${randomBytes(3).toString('hex')}`;
        const a = make(prefix);
        const b = make(prefix);
        await ready(a.broker, b.broker);
        a.broker.retain(ch('room'));
        b.broker.retain(ch('room'));
        await eventually(() => b.broker.counters().channels_unconfirmed === 0 && a.broker.counters().channels_unconfirmed === 0);
        b.broker.release(ch('room'));
        assert.equal(b.broker.counters().channels_subscribed, 0);
        await b.broker.flush(); // the UNSUBSCRIBE went before this PING on the same connection
        await a.broker.publish(ch('room'), '"while away"');
        await a.broker.flush();
        await b.broker.flush();
        assert.deepEqual(received(b, 'room'), []);
        assert.deepEqual(received(a, 'room'), ['"while away"']);
        b.broker.retain(ch('room'));
        await eventually(() => b.broker.counters().channels_unconfirmed === 0);
        await a.broker.publish(ch('room'), '"back"');
        await a.broker.flush();
        await b.broker.flush();
        assert.deepEqual(received(b, 'room'), ['"back"']);
      });

      it('counts an outage: publishes are delivered locally and counted, never rejected; it recovers by itself', async () => {
        const prefix = `c${randomBytes(3).toString('hex')}`;
        const a = make(prefix);
        const b = make(prefix);
        await ready(a.broker, b.broker);
        a.broker.retain(ch('alerts'));
        b.broker.retain(ch('alerts'));
        await eventually(() => a.broker.counters().channels_unconfirmed === 0 && b.broker.counters().channels_unconfirmed === 0);
        const name = redisName('alerts', parseChannel('alerts')!, prefix);
        await driver.down!(name);
        await eventually(() => a.broker.state() !== 'ready', 10_000);
        const lostBefore = a.broker.counters().lost_in_outage;
        for (let n = 0; n < 5; n++) await a.broker.publish(ch('alerts'), String(n));
        assert.deepEqual(received(a, 'alerts'), ['0', '1', '2', '3', '4']);
        assert.equal(a.broker.counters().lost_in_outage - lostBefore, 5);
        assert.ok(a.broker.counters().outages >= 1);
        await driver.up!(name);
        await ready(a.broker, b.broker);
        await eventually(() => a.broker.counters().channels_unconfirmed === 0 && b.broker.counters().channels_unconfirmed === 0, 10_000);
        await a.broker.publish(ch('alerts'), '"after"');
        await a.broker.flush();
        await eventually(async () => {
          await b.broker.flush();
          return received(b, 'alerts').includes('"after"');
        }, 10_000);
        assert.deepEqual(received(b, 'alerts'), ['"after"']);
      });

      it('counts a refused SUBSCRIBE and subscribes again until Redis takes it', async () => {
        const prefix = `c${randomBytes(3).toString('hex')}`;
        const a = make(prefix);
        const b = make(prefix);
        await ready(a.broker, b.broker);
        const name = redisName('locked', parseChannel('locked')!, prefix);
        try {
          await driver.deny!(name);
          b.broker.retain(ch('locked'));
          await eventually(() => b.broker.counters().subscribe_errors >= 1, 5000);
          assert.equal(b.broker.counters().channels_unconfirmed, 1);
        } finally {
          await driver.allow!();
        }
        await ready(a.broker, b.broker);
        await eventually(() => b.broker.counters().channels_unconfirmed === 0, 10_000);
        await a.broker.publish(ch('locked'), '"open"');
        await a.broker.flush();
        await b.broker.flush();
        assert.deepEqual(received(b, 'locked'), ['"open"']);
      });
    }
  });
}
