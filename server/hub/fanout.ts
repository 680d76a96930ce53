/**
 * The fan-out of one server process: which channels have local subscribers, and the way every message
 * the broker delivers here goes out to them.
 *
 * A delivery is encoded once into the turn's outbox and published to the channel's topic when the
 * event-loop turn ends. uWS.js drains its topics whenever a callback into JS returns, so a publish made
 * inside a message handler goes to each subscriber at once, one send() per copy; published together
 * from setImmediate, the copies due to one subscriber leave in one write. With one publisher at 50,000
 * msg/s and 2 subscribers that cut send() calls from 73,000/s to 4,200/s and the server's CPU from 75%
 * to 31% (bare uWS, measured with perf stat). Order within a channel is kept.
 *
 * The hub knows topics, not sockets: it publishes through {@link Topics}, which the endpoint backs
 * with uWS.
 */
import type { Broker } from '../broker/types.js';
import { events, type ChannelRef, type Position } from '../protocol/index.js';
import type { Stats } from '../stats.js';

/** What the hub publishes through: the server's topics (uWS's `app.publish` and `numSubscribers`). */
export interface Topics {
  /** Sends `frame` to every socket on `topic`. */
  publish(topic: string, frame: string): void;
  /** How many sockets are on `topic`. */
  subscribers(topic: string): number;
}

/** A message of this turn: its channel, its frame (its JSON alone, with history, until it goes out) and its position. */
interface Outgoing {
  channel: string;
  frame: string;
  position: Position | undefined;
}

/**
 * Where the hub of one process keeps each message as it goes out, and gets its position: the memory
 * history (history/memory.ts). With Redis the broker's publish script does that, and the delivery
 * brings the position.
 */
export interface Keeper {
  keep(channel: string, messageJson: string): Position;
}

/** A message that went out while a subscriber's replay was read: its position (if any) and its frame. */
export interface Collected {
  position: Position | undefined;
  frame: string;
}

/** Before a channel name, the topic of its join_leave subscribers (no channel name has this character). */
const JOIN_LEAVE_TOPIC = '\u0001';

/**
 * Characters of frames in a turn's outbox past which it goes out at once: twice the 512 KB uWS 20.30
 * reads from one connection per turn. uWS 20.57 may read one connection for as long as it keeps sending
 * (docs/protocol.md, Deviations), and an outbox held until such a turn ended grew on the heap without a
 * bound; published inside a handler, the copies leave in more writes, hence a mark 20.30 never reaches.
 */
const OUTBOX_FLUSH_CHARS = 1024 * 1024;

export interface FanoutParts {
  topics: Topics;
  broker: Broker;
  /**
   * With `--history`: where this process keeps messages and gives them positions (one process), or
   * null when the broker does (Redis); without history, no history at all.
   */
  history: { keeper: Keeper | null } | null;
  stats: Stats;
  /** Told of every byte published, so that slow consumers are found between messages (hub/backpressure.ts). */
  sweep: { published(chars: number): void };
  /** An exception that escaped a delivery or a flush (a bug): counted and logged by the caller. */
  failed(where: string, err: unknown): void;
}

export class Fanout {
  /** Each channel with local subscribers: how many, and the channel as the broker was given it. */
  private readonly interest = new Map<string, { count: number; channel: ChannelRef }>();
  private outbox: Outgoing[] = [];
  /** Characters of the frames (or messages, with history) in the outbox. */
  private outboxChars = 0;
  private flushScheduled = false;
  /**
   * Subscribes with `since` whose replay is being read, by channel: what goes out on the channel
   * meanwhile is collected for them, since their sockets join the channel's topic only after the replay.
   */
  private readonly collecting = new Map<string, Set<Collected[]>>();
  private readonly flushLater = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  constructor(private readonly parts: FanoutParts) {
    parts.broker.onDeliver((channel, json, position) => this.deliver(channel, json, position));
  }

  /** The topic of `channel`'s join and leave events. */
  static joinLeaveTopic(channel: string): string {
    return JOIN_LEAVE_TOPIC + channel;
  }

  /** A connection here subscribed to `channel`: the broker hears of the channel's first. */
  addInterest(channel: ChannelRef): void {
    const held = this.interest.get(channel.name);
    if (held) {
      held.count++;
      return;
    }
    this.interest.set(channel.name, { count: 1, channel });
    this.parts.stats.channels++;
    this.parts.broker.retain(channel);
  }

  /** A connection here left the channel named `name`: the broker hears of the channel's last. */
  dropInterest(name: string): void {
    const held = this.interest.get(name);
    if (!held) return;
    if (--held.count > 0) return;
    this.interest.delete(name);
    this.parts.stats.channels--;
    this.parts.broker.release(held.channel);
  }

  /**
   * The broker's delivery handler, and a monitor's way to this instance alone: one encoding now, the
   * topic's native fan-out when this turn ends (or sooner, past OUTBOX_FLUSH_CHARS).
   */
  deliver(channel: string, messageJson: string, position?: Position): void {
    try {
      if (this.parts.history) {
        // Kept whether anyone listens here or not; encoded with its offset as it goes out (flush).
        this.outbox.push({ channel, frame: messageJson, position });
        this.outboxChars += messageJson.length;
      } else {
        const subscribers = this.parts.topics.subscribers(channel);
        if (subscribers === 0) return;
        this.parts.stats.messagesOut += subscribers;
        const frame = events.message(channel, messageJson);
        this.outbox.push({ channel, frame, position });
        this.outboxChars += frame.length;
      }
      if (this.outboxChars >= OUTBOX_FLUSH_CHARS) this.flush();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flushLater);
      }
    } catch (err) {
      this.parts.failed('pubsub deliver', err);
    }
  }

  /** Whether messages wait in the outbox. */
  get pending(): boolean {
    return this.outbox.length > 0;
  }

  /**
   * Publishes what this turn delivered, telling the sweep of every byte, so that no socket passes the
   * limit by more than the sweep's budget between looks.
   */
  flush(): void {
    const outbox = this.outbox;
    this.outbox = [];
    this.outboxChars = 0;
    const { topics, history, stats, sweep } = this.parts;
    const keeper = history?.keeper;
    try {
      for (const outgoing of outbox) {
        const { channel } = outgoing;
        let frame = outgoing.frame;
        if (history) {
          // Kept here in one process; with Redis a message that did not travel through it (an outage, a
          // monitor's publishHere) has no position.
          const position = keeper ? keeper.keep(channel, frame) : outgoing.position;
          frame = events.message(channel, frame, false, position);
          if (this.collecting.size > 0) this.collect(channel, position, frame);
          const subscribers = topics.subscribers(channel);
          if (subscribers === 0) continue;
          stats.messagesOut += subscribers;
        }
        topics.publish(channel, frame);
        sweep.published(frame.length);
      }
    } catch (err) {
      this.parts.failed('pubsub flush', err);
    }
  }

  /**
   * Starts collecting what goes out on `channel` (for a subscriber whose replay is being read); the
   * returned function stops it and gives what was collected.
   */
  startCollecting(channel: string): () => Collected[] {
    const frames: Collected[] = [];
    let set = this.collecting.get(channel);
    if (!set) this.collecting.set(channel, (set = new Set()));
    set.add(frames);
    return () => {
      set.delete(frames);
      if (set.size === 0 && this.collecting.get(channel) === set) this.collecting.delete(channel);
      return frames;
    };
  }

  /** A join or leave anywhere: to this instance's subscribers of the channel that asked for them. */
  joinOrLeave(kind: 'join' | 'leave', channel: string, member: events.Member): void {
    const topic = Fanout.joinLeaveTopic(channel);
    const subscribers = this.parts.topics.subscribers(topic);
    if (subscribers === 0) return;
    this.parts.stats.messagesOut += subscribers;
    this.parts.topics.publish(topic, events.joinLeave(kind, channel, member));
  }

  private collect(channel: string, position: Position | undefined, frame: string): void {
    const waiting = this.collecting.get(channel);
    if (waiting) for (const frames of waiting) frames.push({ position, frame });
  }
}
