/**
 * The Redis broker (ioredis): bridges every server instance through Redis pub/sub, in the layout of
 * websocket-redis (docs/protocol.md): `news` travels on `broadcast:news`, `user:john:chat` and
 * `session:abc:chat` on their own names, all under `<prefix>:` when a prefix is set. The payload is the
 * message's JSON text, so `redis-cli PUBLISH broadcast:news '{"x":1}'` reaches every subscriber.
 *
 * Exactly once: a publish goes only to Redis, never straight to local subscribers; each instance
 * subscribes once per channel it has local interest in (retain/release), and delivers what Redis sends
 * it once. While Redis is unreachable the broker delivers locally (no connection is dropped, this
 * instance keeps working) and counts each such message as lost to the other instances; ioredis
 * reconnects by itself and the broker subscribes every retained channel again.
 *
 * Publishing: everything published in one event-loop turn goes to Redis as one script call
 * (PUBLISH_SCRIPT: for each message, `SET name json EX S` when caching, then `PUBLISH name json`), in
 * order, on one connection. Subscribers, redis-cli among them, still see one Redis message per publish;
 * what is saved is the client side: one ioredis command per turn instead of one (with its promise and
 * garbage) per message, which was most of a publishing instance's CPU at 50,000 msg/s.
 *
 * Redis Cluster (`nodes` instead of `url`): the same names travel as shard channels (`SPUBLISH` and
 * `SSUBSCRIBE`, Redis 7), so a message is handled only by the shard that owns its channel's hash slot
 * instead of by every node, and the cache key lives on that same shard (the key and the channel have one
 * name, hence one slot). ioredis's `Cluster` keeps one subscriber connection per shard
 * (`shardedSubscribers`) and routes each `SSUBSCRIBE` to the shard of its slot. A cluster can lose one
 * shard and keep the others: the cluster client stays `ready`, so the broker pings every master of the
 * slot map each second and reports the ones that do not answer (state, hence `/health`), and counts
 * such a partial outage in `outages`; publishes to a lost shard's channels are delivered locally and
 * counted in `lost_in_outage`, as with one Redis, at once once the probe has seen the shard go (ioredis
 * itself takes 1-1.7 s of retries to give up on each such publish).
 */
import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import { isJsonText, parseChannel, redisName } from '../protocol/index.js';
import type { Broker, DeliverHandler } from './types.js';

/**
 * KEYS: the Redis names; ARGV: the payloads in the same order, then the cache's seconds (0: none).
 * Declaring the names as keys keeps the script valid where Redis checks keys (cluster, ACLs).
 */
const PUBLISH_SCRIPT = `
local expire = tonumber(ARGV[#KEYS + 1])
for i = 1, #KEYS do
  if expire > 0 then redis.call('SET', KEYS[i], ARGV[i], 'EX', expire) end
  redis.call('PUBLISH', KEYS[i], ARGV[i])
end
return #KEYS`;

/** Messages per script call; a longer turn is sent as several calls, back to back. */
const MAX_BATCH = 1000;

/** Redis Cluster: how often every master is pinged, and how long a PING may take before it counts as down. */
const SHARD_PROBE_MS = 1000;
const SHARD_PING_TIMEOUT_MS = 1000;

/** Redis Cluster: one channel's publishes that are not done yet (see publishSharded). */
interface ChannelOrder {
  /** Sent to the shard, not answered yet. */
  unanswered: number;
  /** Waiting for their turn, in publish order. */
  waiting: { channel: string; messageJson: string; toShard: boolean; since: number; resolve: () => void }[];
  /** Wakes the first waiting message when it has waited ORDER_WAIT_MS. */
  timer: NodeJS.Timeout | null;
}

/**
 * Redis Cluster: how long a local delivery waits for earlier publishes of its channel to be answered.
 * A node that hangs (rather than dies) never answers; past this, local delivery goes on out of order.
 */
const ORDER_WAIT_MS = 1000;

/** What one event-loop turn published; `done` settles when Redis (or the local fallback) has it all. */
interface Batch {
  channels: string[];
  names: string[];
  payloads: string[];
  done: Promise<void>;
  settle: () => void;
}

type ScriptedRedis = Redis & { publishBatch(numKeys: number, ...args: (string | number)[]): Promise<number> };

/** Options of {@link RedisBroker}. */
export interface RedisBrokerOptions {
  /** `redis://host:port/db` of one Redis; or null with `nodes`. */
  url: string | null;
  /** Redis Cluster seed nodes (`host:port`); the rest of the cluster is discovered from them. */
  nodes?: string[];
  /** Namespace before every Redis name (`<prefix>:broadcast:news`); empty for none. */
  prefix: string;
  /** Seconds the last message of a channel is kept in Redis (`SET key value EX S`); 0 keeps nothing. */
  expire: number;
}

export class RedisBroker implements Broker {
  readonly kind: 'redis' | 'redis-cluster';
  /** Messages published while Redis was unreachable: delivered here only, lost to the other instances. */
  private lostInOutage = 0;
  /** Times the connection to Redis was lost. */
  private outages = 0;
  private deliver: DeliverHandler = () => {};
  /** Publishes and reads the cache. */
  private readonly pub: Redis | Cluster;
  /** Subscribes; a Cluster one keeps a subscriber connection per shard. */
  private readonly sub: Redis | Cluster;
  /** Redis Cluster: shard channels (SPUBLISH/SSUBSCRIBE). */
  private readonly sharded: boolean;
  /** Redis name -> our channel, for every channel with local interest. */
  private readonly retained = new Map<string, string>();
  /** Publishes of the current event-loop turn (one Redis only), sent when it ends. */
  private batch: Batch | null = null;
  private wasReady = false;
  /** Redis Cluster: per Redis name with publishes not yet answered, their order. */
  private readonly order = new Map<string, ChannelOrder>();
  /** Redis Cluster: masters (`host:port`) that did not answer the last probe, sorted. */
  private unreachableShards: string[] = [];
  private shardProbe: NodeJS.Timeout | null = null;

  constructor(private readonly options: RedisBrokerOptions) {
    const common = {
      // Fail fast while Redis is away: a publish must not wait in a queue; it is delivered locally instead.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times: number) => Math.min(100 * times, 2000),
      lazyConnect: true,
    };
    this.sharded = options.url === null;
    this.kind = this.sharded ? 'redis-cluster' : 'redis';
    if (options.url === null) {
      const nodes = (options.nodes ?? []).map((node) => {
        const [host, port] = node.split(/:(?=\d+$)/);
        return { host, port: Number(port) };
      });
      const cluster = {
        enableOfflineQueue: false,
        lazyConnect: true,
        // Fail fast here too: by default ioredis retries a command whose node is gone for up to 1.6 s
        // (16 x 100 ms), and when a replica takes over in that time the retried publishes go through
        // after later ones that were already delivered locally: out of order at this instance.
        retryDelayOnFailover: 0,
        retryDelayOnClusterDown: 0,
        clusterRetryStrategy: common.retryStrategy,
        redisOptions: { maxRetriesPerRequest: 0, connectionName: 'pubsub-server' },
      };
      // Two clients, as with one Redis: auto-pipelining would also batch SSUBSCRIBE (ioredis does not
      // exempt it) onto a node's command connection instead of the shard's subscriber connection.
      this.pub = new Cluster(nodes, { ...cluster, enableAutoPipelining: true });
      this.sub = new Cluster(nodes, { ...cluster, shardedSubscribers: true });
      this.sub.on('smessageBuffer', (name: Buffer, payload: Buffer) => this.onMessage(name.toString(), payload.toString()));
    } else {
      // Auto-pipelining sends the publishes of one event-loop turn in one write (order is kept).
      this.pub = new Redis(options.url, { ...common, connectionName: 'pubsub-server:pub' });
      // EVALSHA, and EVAL once when Redis does not know the script (a fresh or restarted server).
      this.pub.defineCommand('publishBatch', { lua: PUBLISH_SCRIPT });
      // The subscriber's channels are (re)subscribed by this class on every 'ready': SUBSCRIBEs queued by
      // ioredis while it was still connecting were lost now and then (2 of 15 fresh starts in a test).
      this.sub = new Redis(options.url, { ...common, autoResubscribe: false, connectionName: 'pubsub-server:sub' });
      this.sub.on('messageBuffer', (name: Buffer, payload: Buffer) => this.onMessage(name.toString(), payload.toString()));
    }
    this.sub.on('ready', () => {
      for (const names of this.subscribeBatches([...this.retained.keys()])) void this.subscribe(names);
    });
    for (const client of [this.pub, this.sub]) client.on('error', () => undefined); // state() reports it
    this.pub.on('ready', () => (this.wasReady = true));
    this.pub.on('close', () => {
      if (this.wasReady) this.outages++;
      this.wasReady = false;
    });
  }

  /** Starts connecting; resolves at once, since the server must start even while Redis is down. */
  connect(): void {
    for (const client of [this.pub, this.sub]) void client.connect().catch(() => undefined);
    if (this.sharded) this.shardProbe = setInterval(() => void this.probeShards(), SHARD_PROBE_MS).unref();
  }

  /**
   * Pings every master named in the slot map. ioredis drops a lost node's connection from its pool and
   * only looks for it again when told, so while a shard is missing the slot map is refreshed each
   * probe; that brings the node's connection back once it answers again.
   */
  private async probeShards(): Promise<void> {
    const cluster = this.pub as Cluster;
    if (cluster.status !== 'ready') return;
    const masters = new Set(cluster.slots.map((owners) => owners[0]).filter((key) => key !== undefined));
    const pool = new Map(cluster.nodes('master').map((node) => [`${node.options.host}:${node.options.port}`, node]));
    const answers = await Promise.all(
      [...masters].map(async (key) => {
        const node = pool.get(key);
        if (!node) return key;
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), SHARD_PING_TIMEOUT_MS)));
        const answered = await Promise.race([node.ping(), timeout]).then(() => true, () => false);
        clearTimeout(timer);
        return answered ? null : key;
      }),
    );
    const down = answers.filter((key): key is string => key !== null).sort();
    if (down.length > 0 && this.unreachableShards.length === 0) this.outages++;
    this.unreachableShards = down;
    if (down.length > 0) cluster.refreshSlotsCache();
  }

  onDeliver(handler: DeliverHandler): void {
    this.deliver = handler;
  }

  async publish(channel: string, messageJson: string): Promise<void> {
    const name = this.name(channel);
    if (this.sharded) return this.publishSharded(channel, name, messageJson);
    if (this.pub.status === 'ready') return this.addToBatch(channel, name, messageJson);
    this.deliverLocally(channel, messageJson);
  }

  /**
   * Redis Cluster. The route (the channel's shard, or local delivery while the shard is lost) is chosen
   * per message, so two messages of one channel may take different routes; the channel's order keeps
   * them in publish order here. A message delivered locally waits until every earlier publish of its
   * channel has been answered (one still waiting on a dying node may yet fail and fall back to local
   * delivery itself), but at most ORDER_WAIT_MS; whatever comes after a waiting message waits behind it.
   * With nothing waiting (the usual case) a publish is sent at once, pipelined with the others. Either
   * way each message is delivered once: locally only when its shard refused it.
   */
  private publishSharded(channel: string, name: string, messageJson: string): Promise<void> {
    const toShard = this.pub.status === 'ready' && !this.onLostShard(name);
    const order = this.order.get(name);
    if (!order || order.waiting.length === 0) {
      if (toShard) return this.sendToShard(channel, name, messageJson);
      if (!order || order.unanswered === 0) {
        this.deliverLocally(channel, messageJson);
        return Promise.resolve();
      }
    }
    const o = order as ChannelOrder;
    return new Promise<void>((resolve) => {
      o.waiting.push({ channel, messageJson, toShard, since: performance.now(), resolve });
      this.takeTurns(name, o);
    });
  }

  private async sendToShard(channel: string, name: string, messageJson: string): Promise<void> {
    let o = this.order.get(name);
    if (!o) this.order.set(name, (o = { unanswered: 0, waiting: [], timer: null }));
    o.unanswered++;
    try {
      // One connection per shard keeps every publish in order; with a cache, MULTI keeps the SET with its SPUBLISH.
      if (this.options.expire > 0) {
        await this.pub.multi().set(name, messageJson, 'EX', this.options.expire).spublish(name, messageJson).exec();
      } else {
        await this.pub.spublish(name, messageJson);
      }
    } catch {
      this.deliverLocally(channel, messageJson); // the shard went away between the check and the answer
    } finally {
      o.unanswered--;
      this.takeTurns(name, o);
    }
  }

  /** Sends or delivers a channel's waiting messages, in order, as far as their turn has come. */
  private takeTurns(name: string, o: ChannelOrder): void {
    while (o.waiting.length > 0) {
      const head = o.waiting[0];
      const waited = performance.now() - head.since;
      if (!head.toShard && o.unanswered > 0 && waited < ORDER_WAIT_MS) {
        o.timer ??= setTimeout(() => {
          o.timer = null;
          this.takeTurns(name, o);
        }, ORDER_WAIT_MS - waited);
        return;
      }
      o.waiting.shift();
      if (head.toShard) {
        void this.sendToShard(head.channel, name, head.messageJson).then(head.resolve);
      } else {
        this.deliverLocally(head.channel, head.messageJson);
        head.resolve();
      }
    }
    if (o.timer) clearTimeout(o.timer);
    o.timer = null;
    if (o.unanswered === 0 && this.order.get(name) === o) this.order.delete(name);
  }

  /** A publish that Redis cannot carry: this instance's subscribers get it, the others lose it (counted). */
  private deliverLocally(channel: string, messageJson: string): void {
    this.lostInOutage++;
    this.deliver(channel, messageJson);
  }

  /** Redis Cluster: whether the master that owns `name`'s slot did not answer the last probe. */
  private onLostShard(name: string): boolean {
    if (this.unreachableShards.length === 0) return false;
    const owner = (this.pub as Cluster).slots[calculateSlot(name)]?.[0];
    return owner !== undefined && this.unreachableShards.includes(owner);
  }

  private addToBatch(channel: string, name: string, messageJson: string): Promise<void> {
    let batch = this.batch;
    if (!batch) {
      let settle = (): void => undefined;
      const done = new Promise<void>((resolve) => (settle = resolve));
      batch = this.batch = { channels: [], names: [], payloads: [], done, settle };
      setImmediate(() => void this.sendBatch(batch as Batch));
    }
    batch.channels.push(channel);
    batch.names.push(name);
    batch.payloads.push(messageJson);
    return batch.done;
  }

  /**
   * Sends a turn's publishes as script calls of up to MAX_BATCH messages, all written at once so they
   * stay in order. A call that fails (Redis went away meanwhile) has its messages delivered here only
   * and counted as lost to the other instances, as a publish during an outage is.
   */
  private async sendBatch(batch: Batch): Promise<void> {
    this.batch = null; // it is this one: a batch is only replaced once it has been sent
    const pub = this.pub as ScriptedRedis;
    const calls: Promise<void>[] = [];
    for (let from = 0; from < batch.names.length; from += MAX_BATCH) {
      const to = Math.min(batch.names.length, from + MAX_BATCH);
      const names = batch.names.slice(from, to);
      const payloads = batch.payloads.slice(from, to);
      calls.push(
        pub.publishBatch(names.length, ...names, ...payloads, this.options.expire).then(
          () => undefined,
          () => {
            for (let i = from; i < to; i++) this.deliverLocally(batch.channels[i], batch.payloads[i]);
          },
        ),
      );
    }
    await Promise.all(calls);
    batch.settle();
  }

  retain(channel: string): void {
    const name = this.name(channel);
    this.retained.set(name, channel);
    if (this.sub.status === 'ready') void this.subscribe([name]);
  }

  release(channel: string): void {
    const name = this.name(channel);
    this.retained.delete(name);
    if (this.sub.status === 'ready') void (this.sharded ? this.sub.sunsubscribe(name) : this.sub.unsubscribe(name)).catch(() => undefined);
  }

  async lastMessage(channel: string): Promise<string | undefined> {
    if (this.options.expire <= 0 || this.pub.status !== 'ready') return undefined;
    try {
      return (await this.pub.get(this.name(channel))) ?? undefined;
    } catch {
      return undefined;
    }
  }

  state(): string {
    if (this.pub.status === 'ready' && this.unreachableShards.length > 0) return `shard ${this.unreachableShards.join(',')} unreachable`;
    if (this.pub.status === 'ready' && this.sub.status === 'ready') return 'ready';
    return this.pub.status === 'ready' ? `subscriber ${this.sub.status}` : this.pub.status;
  }

  counters(): Record<string, number> {
    return { lost_in_outage: this.lostInOutage, outages: this.outages, channels_subscribed: this.retained.size };
  }

  async close(): Promise<void> {
    if (this.shardProbe) clearInterval(this.shardProbe);
    for (const client of [this.pub, this.sub]) client.disconnect();
  }

  private async subscribe(names: string[]): Promise<void> {
    await (this.sharded ? this.sub.ssubscribe(...names) : this.sub.subscribe(...names)).catch(() => undefined);
  }

  /** One SUBSCRIBE may name every channel; one SSUBSCRIBE only channels of one hash slot, so one each. */
  private subscribeBatches(names: string[]): string[][] {
    if (names.length === 0) return [];
    return this.sharded ? names.map((name) => [name]) : [names];
  }

  private name(channel: string): string {
    const facility = parseChannel(channel);
    if (!facility) throw new RangeError(`not a channel name: ${channel}`);
    return redisName(channel, facility, this.options.prefix);
  }

  /** A payload that is not JSON (from another program) arrives as a JSON string. */
  private onMessage(name: string, payload: string): void {
    const channel = this.retained.get(name);
    if (channel === undefined) return;
    this.deliver(channel, isJsonText(payload) ? payload : JSON.stringify(payload));
  }
}
