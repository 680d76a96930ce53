/** Picks the broker for a server's options: in memory by default, Redis with `--redis`, Redis Cluster with `--redis-cluster`. */
import type { KeptLimits } from '../kept-bounds.js';
import { silentLog, type Logger } from '../log.js';
import { LocalBroker } from './local.js';
import { RedisClusterBroker } from './redis/cluster.js';
import { RedisBroker } from './redis/single.js';
import type { Broker } from './types.js';

export type { Broker, DeliverHandler } from './types.js';

/** What the factory needs to choose and configure a broker. */
export interface BrokerOptions {
  /** Seconds the last message of a channel is kept; 0 keeps nothing. */
  expire: number;
  /** Redis URL; null for the in-memory broker (or a cluster). */
  redis: string | null;
  /** Redis Cluster seed nodes, `host:port,...`; null for none. */
  redisCluster?: string | null;
  /** Namespace of Redis names; empty for none. */
  prefix: string;
  /** Where the Redis drivers log outages and errors; nothing is logged without it. */
  log?: Logger;
  /**
   * With Redis, keep each channel's last `size` messages for `ttlMs` there (`--history`): the publish
   * script gives offsets (server/history/redis.ts). Without Redis the endpoint keeps them itself.
   */
  history?: { size: number; ttlMs: number } | null;
  /** Milliseconds a single Redis may take to answer a probe before it counts as not answering. */
  redisTimeoutMs?: number;
  /** How much the in-memory broker's last-message cache keeps at most (`--max-kept-channels`, `--max-kept-bytes`). */
  limits?: KeptLimits;
}

/** Creates the broker. A Redis broker starts connecting at once but does not wait: Redis may come later. */
export function createBroker(options: BrokerOptions): Broker {
  const { expire, prefix } = options;
  const log = options.log ?? silentLog();
  if (options.redisCluster) {
    const broker = new RedisClusterBroker({ nodes: options.redisCluster.split(','), prefix, expire, log });
    broker.connect();
    return broker;
  }
  if (options.redis !== null) {
    const broker = new RedisBroker({ url: options.redis, prefix, expire, log, history: options.history, timeoutMs: options.redisTimeoutMs });
    broker.connect();
    return broker;
  }
  return new LocalBroker({ expire, limits: options.limits });
}
