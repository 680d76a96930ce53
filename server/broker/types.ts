/**
 * The pub/sub backend behind the server. The hub and the endpoints talk to this interface only:
 * `local.ts` keeps everything in this process, `redis/single.ts` (`--redis`) and `redis/cluster.ts`
 * (`--redis-cluster`) bridge instances. One contract suite (test/broker-contract.test.ts) runs against each.
 */

import type { ChannelRef, Position } from '../protocol/index.js';

/**
 * Receives every message the broker delivers to this instance; registered once. `position`: where the
 * message stands in its channel's history, when the broker keeps the history (Redis with `--history`).
 */
export type DeliverHandler = (channel: string, messageJson: string, position?: Position) => void;

/**
 * A pub/sub backend. Channels come in parsed (the name and what it means), as the frame parser made
 * them, so a driver never parses a name again; deliveries name the channel only.
 *
 * Guarantees:
 * - At most once: a message reaches each local subscriber of its channel once or not at all.
 * - Order: messages that one publisher publishes on one channel are delivered in publish order.
 * - `publish` accepts JSON text and delivers it unchanged; encoding for the wire happens once per
 *   delivery to an instance, in the handler, never per subscriber.
 * - Interest: `retain` is called when a channel gets its first local subscriber and `release` when it
 *   loses its last, so a bridging broker subscribes upstream only to channels someone here wants.
 */
export interface Broker {
  /** `local` or `redis`. */
  readonly kind: string;
  /** Registers the one handler that receives deliveries. Call before the first publish. */
  onDeliver(handler: DeliverHandler): void;
  /**
   * Publishes `messageJson` on `channel` to every instance, and caches it when a cache is configured.
   * Never rejects: resolves once the message is on its way to the subscribers of every instance the
   * driver can reach, or, when it can reach none but this one, has been delivered here and counted
   * as lost to the others (`lost_in_outage`). Resolves with the message's position when the broker
   * keeps the history (Redis with `--history`: the same position every delivery carries), else with
   * undefined.
   */
  publish(channel: ChannelRef, messageJson: string): Promise<Position | undefined>;
  /**
   * Resolves once every message whose `publish` was called before has been handed to the deliver
   * handler of this instance (when this instance has local interest in its channel), and every
   * message other instances had published by then too, as far as the driver can tell (its TSDoc says
   * how far). Shutdown awaits it before goodbye, so an ack always means delivered here.
   */
  flush(): Promise<void>;
  /**
   * Resolves once every message the backend had carried (from any instance) when `fence` was called
   * has been handed to the deliver handler of this instance, for the channels it has interest in. It
   * does not wait for this instance's own publishes still on their way (that is `flush`). A subscriber
   * that recovers from a history read awaits it, so that messages the read already holds are not
   * still on their way here when it joins the live stream.
   */
  fence(): Promise<void>;
  /** The channel got its first local subscriber. */
  retain(channel: ChannelRef): void;
  /**
   * Null when messages that other instances publish on a retained `channel` from now on reach this
   * one already (always, for a broker of one process); else a promise that resolves once they do (its
   * upstream subscription confirmed), or after a bounded wait. The `subscribed` ack waits for it, so
   * that an ack means: every message published after it, on any instance, reaches this subscriber.
   */
  subscribed(channel: ChannelRef): Promise<void> | null;
  /** The channel lost its last local subscriber. */
  release(channel: ChannelRef): void;
  /** The cached last message of `channel` (JSON text), or undefined when none is kept or it expired. */
  lastMessage(channel: ChannelRef): Promise<string | undefined>;
  /** `ready`, or a word saying why delivery across instances is degraded. */
  state(): string;
  /** The broker's own counters for /stats and /metrics (snake_case names); empty when it keeps none. */
  counters(): Record<string, number>;
  /** Releases timers and connections. */
  close(): Promise<void>;
}
