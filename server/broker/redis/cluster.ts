/**
 * The Redis Cluster driver (`--redis-cluster host:port,...`): the same names as the single-Redis
 * driver travel as shard channels (`SPUBLISH` and `SSUBSCRIBE`, Redis 7), so a message is handled only
 * by the shard that owns its channel's hash slot instead of by every node, and the cache key lives on
 * that same shard (the key and the channel have one name, hence one slot). ioredis's `Cluster` keeps
 * one subscriber connection per shard (`shardedSubscribers`) and routes each `SSUBSCRIBE` to the shard
 * of its slot.
 *
 * Guarantees:
 * - Exactly once while every shard is up, as with one Redis.
 * - Order: one publisher's messages on a channel are delivered in publish order, on this instance and
 *   across instances, while the channel's shard answers. When a shard is lost, its channels' publishes
 *   are delivered locally (counted in `lost_in_outage`); a local delivery waits for every earlier
 *   publish of its channel to be answered, but at most ORDER_WAIT_MS: a shard that hangs (rather than
 *   dies) never answers, and after that wait this instance may deliver a channel's messages out of order.
 * - Outage: a cluster can lose one shard and keep the others. The cluster client stays `ready`, so the
 *   broker pings every master of the slot map each second, reports the ones that do not answer
 *   (state, hence `/health`), and counts such a partial outage in `outages`; publishes to a lost
 *   shard's channels are delivered locally at once once the probe has seen the shard go (ioredis itself
 *   takes 1-1.7 s of retries to give up on each such publish). `publish` never rejects.
 * - Flush: resolves once every earlier publish of this instance was answered, then PINGs each shard's
 *   subscriber connection, which (as with one Redis) Redis answers after the messages it sent before.
 *   The subscriber connections are ioredis internals (`shardedSubscribers`); where they cannot be
 *   reached the fence is skipped and counted in `flush_errors`.
 */
import calculateSlot from 'cluster-key-slot';
import { Cluster, type Redis } from 'ioredis';
import type { ChannelRef } from '../../protocol/index.js';
import { FAIL_FAST, RedisBrokerBase, type RedisBrokerOptions } from './shared.js';

/** How often every master is pinged, and how long a PING may take before it counts as down. */
const SHARD_PROBE_MS = 1000;
const SHARD_PING_TIMEOUT_MS = 1000;

/**
 * How long a local delivery waits for earlier publishes of its channel to be answered. A node that
 * hangs (rather than dies) never answers; past this, local delivery goes on out of order.
 */
const ORDER_WAIT_MS = 1000;

/** One channel's publishes that are not done yet (see publish). */
interface ChannelOrder {
  /** Sent to the shard, not answered yet. */
  unanswered: number;
  /** Waiting for their turn, in publish order. */
  waiting: { channel: string; messageJson: string; toShard: boolean; since: number; resolve: (none: undefined) => void }[];
  /** Wakes the first waiting message when it has waited ORDER_WAIT_MS. */
  timer: NodeJS.Timeout | null;
  /** Settles when the channel has nothing in flight or waiting any more (its entry is dropped). */
  idle: Promise<void>;
  settle: () => void;
}

/** Options of {@link RedisClusterBroker}. */
export interface ClusterOptions extends RedisBrokerOptions {
  /** Seed nodes (`host:port`); the rest of the cluster is discovered from them. */
  nodes: string[];
}

/** The ioredis internals the flush fence reaches for; absent in other ioredis versions. */
interface ShardedSubscriberGroup {
  shardedSubscribers?: Map<string, { getInstance(): Redis | undefined }>;
}

export class RedisClusterBroker extends RedisBrokerBase {
  readonly kind = 'redis-cluster';
  protected readonly pub: Cluster;
  protected readonly sub: Cluster;
  /** Per Redis name with publishes not yet answered, their order. */
  private readonly order = new Map<string, ChannelOrder>();
  /** Masters (`host:port`) that did not answer the last probe, sorted. */
  private unreachableShards: string[] = [];
  private shardProbe: NodeJS.Timeout | null = null;

  constructor(options: ClusterOptions) {
    super(options);
    const nodes = options.nodes.map((node) => {
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
      clusterRetryStrategy: FAIL_FAST.retryStrategy,
      redisOptions: { maxRetriesPerRequest: 0, connectionName: 'pubsub-server' },
    };
    // Two clients, as with one Redis: auto-pipelining would also batch SSUBSCRIBE (ioredis does not
    // exempt it) onto a node's command connection instead of the shard's subscriber connection.
    this.pub = new Cluster(nodes, { ...cluster, enableAutoPipelining: true });
    this.sub = new Cluster(nodes, { ...cluster, shardedSubscribers: true });
    this.sub.on('smessageBuffer', (name: Buffer, payload: Buffer) => this.onMessage(name.toString(), payload.toString()));
    this.watchClients();
  }

  override connect(): void {
    super.connect();
    this.shardProbe = setInterval(() => void this.probeShards(), SHARD_PROBE_MS).unref();
  }

  /**
   * The route (the channel's shard, or local delivery while the shard is lost) is chosen per message,
   * so two messages of one channel may take different routes; the channel's order keeps them in publish
   * order here. A message delivered locally waits until every earlier publish of its channel has been
   * answered (one still waiting on a dying node may yet fail and fall back to local delivery itself),
   * but at most ORDER_WAIT_MS; whatever comes after a waiting message waits behind it. With nothing
   * waiting (the usual case) a publish is sent at once, pipelined with the others. Either way each
   * message is delivered once: locally only when its shard refused it.
   */
  /** Resolves with no position: the cluster driver keeps no history. */
  publish(ref: ChannelRef, messageJson: string): Promise<undefined> {
    const name = this.name(ref);
    const channel = ref.name;
    const toShard = this.pub.status === 'ready' && !this.onLostShard(name);
    const order = this.order.get(name);
    if (!order || order.waiting.length === 0) {
      if (toShard) return this.sendToShard(channel, name, messageJson);
      if (!order || order.unanswered === 0) {
        this.deliverLocally(channel, messageJson);
        return Promise.resolve(undefined);
      }
    }
    const o = order as ChannelOrder;
    return new Promise<undefined>((resolve) => {
      o.waiting.push({ channel, messageJson, toShard, since: performance.now(), resolve });
      this.takeTurns(name, o);
    });
  }

  async flush(): Promise<void> {
    while (this.order.size > 0) await Promise.all([...this.order.values()].map((o) => o.idle));
    await this.fence();
  }

  /** A PING on every shard's subscriber connection (see the single driver's `fence`). */
  async fence(): Promise<void> {
    const group = (this.sub as unknown as { shardedSubscribers?: ShardedSubscriberGroup }).shardedSubscribers;
    const subscribers = group?.shardedSubscribers;
    if (!subscribers) {
      this.problem('flush_errors');
      return;
    }
    await Promise.all(
      [...subscribers.values()].map(async (subscriber) => {
        const redis = subscriber.getInstance();
        if (!redis || redis.status !== 'ready') return;
        await redis.ping().catch(() => this.problem('flush_errors'));
      }),
    );
  }

  state(): string {
    if (this.pub.status === 'ready' && this.unreachableShards.length > 0) return `shard ${this.unreachableShards.join(',')} unreachable`;
    if (this.pub.status === 'ready' && this.sub.status === 'ready') return 'ready';
    return this.pub.status === 'ready' ? `subscriber ${this.sub.status}` : this.pub.status;
  }

  override async close(): Promise<void> {
    if (this.shardProbe) clearInterval(this.shardProbe);
    await super.close();
  }

  protected subscribeInRedis(names: string[]): Promise<unknown> {
    return this.sub.ssubscribe(...names);
  }

  protected unsubscribeInRedis(name: string): Promise<unknown> {
    return this.sub.sunsubscribe(name);
  }

  /** One SSUBSCRIBE names only channels of one hash slot, so one each. */
  protected subscribeBatches(names: string[]): string[][] {
    return names.map((name) => [name]);
  }

  private async sendToShard(channel: string, name: string, messageJson: string): Promise<undefined> {
    let o = this.order.get(name);
    if (!o) {
      let settle = (): void => undefined;
      const idle = new Promise<void>((resolve) => (settle = resolve));
      this.order.set(name, (o = { unanswered: 0, waiting: [], timer: null, idle, settle }));
    }
    o.unanswered++;
    try {
      // One connection per shard keeps every publish in order; with a cache, MULTI keeps the SET with its SPUBLISH.
      if (this.options.expire > 0) {
        await this.pub.multi().set(name, messageJson, 'EX', this.options.expire).spublish(name, messageJson).exec();
      } else {
        await this.pub.spublish(name, messageJson);
      }
    } catch {
      this.problem('publish_errors');
      this.deliverLocally(channel, messageJson); // the shard went away between the check and the answer
    } finally {
      o.unanswered--;
      this.takeTurns(name, o);
    }
    return undefined;
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
        head.resolve(undefined);
      }
    }
    if (o.timer) clearTimeout(o.timer);
    o.timer = null;
    if (o.unanswered === 0 && this.order.get(name) === o) {
      this.order.delete(name);
      o.settle();
    }
  }

  /** Whether the master that owns `name`'s slot did not answer the last probe. */
  private onLostShard(name: string): boolean {
    if (this.unreachableShards.length === 0) return false;
    const owner = this.pub.slots[calculateSlot(name)]?.[0];
    return owner !== undefined && this.unreachableShards.includes(owner);
  }

  /**
   * Pings every master named in the slot map. ioredis drops a lost node's connection from its pool and
   * only looks for it again when told, so while a shard is missing the slot map is refreshed each
   * probe; that brings the node's connection back once it answers again.
   */
  private async probeShards(): Promise<void> {
    const cluster = this.pub;
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
    if (down.length > 0 && this.unreachableShards.length === 0) this.counts.outages++;
    if (down.join() !== this.unreachableShards.join()) {
      if (down.length > 0) this.options.log.warn({ unreachable: down, outages: this.counts.outages }, 'redis cluster shard unreachable: its channels reach this instance only (/health 503)');
      else this.options.log.info({ outages: this.counts.outages, lost_in_outage: this.counts.lost_in_outage }, 'every redis cluster shard answers again');
    }
    this.unreachableShards = down;
    if (down.length > 0) cluster.refreshSlotsCache();
  }
}
