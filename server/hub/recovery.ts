/**
 * A subscribe with `since`: the kept messages after it, then what went out on the channel while they
 * were read and is newer, then live messages; and whether that was everything the client missed.
 *
 * The caller takes the socket off the channel's topic and calls {@link Recovery.begin} in the same turn,
 * which starts collecting what goes out on the channel; when its turn in the connection's queue comes,
 * the read it returned reads the history, waits until what the read holds has arrived here (the
 * broker's fence) and sends it out, so that it is collected (and skipped by offset) instead of reaching
 * the socket through the topic after the replay. The caller then sends the frames, joins the topic and
 * acks, in one turn: nothing is missed and nothing comes twice in between.
 */
import type { Broker } from '../broker/types.js';
import type { History, Missed, Position } from '../history/types.js';
import { events } from '../protocol/index.js';
import type { Collected, Fanout } from './fanout.js';

/** What a recovering subscriber is sent before it joins the live stream. */
export interface Replay {
  /** The frames, in order: the kept messages, then what was collected meanwhile and is newer. */
  frames: string[];
  /** Whether they are exactly what the client missed (the `recovered` of its `subscribed`). */
  recovered: boolean;
}

export class Recovery {
  constructor(
    private readonly history: History,
    private readonly broker: Broker,
    private readonly fanout: Fanout,
    /** A history read failed: the client gets `recovered: false`, the caller logs it. */
    private readonly failed: (err: unknown) => void,
  ) {}

  /** Starts collecting for a client that last saw `since` on `channel`; the read it returns says what to send it. */
  begin(channel: string, since: Position): () => Promise<Replay> {
    const stop = this.fanout.startCollecting(channel);
    return () => this.read(channel, since, stop);
  }

  private async read(channel: string, since: Position, stop: () => Collected[]): Promise<Replay> {
    let missed: Missed;
    try {
      missed = await this.history.since(channel, since);
      // Messages the read holds may still be on their way here (Redis sends them on another
      // connection): once they have arrived, send them out now, so that they are collected.
      await this.broker.fence();
      if (this.fanout.pending) this.fanout.flush();
    } catch (err) {
      this.failed(err);
      missed = { recovered: false, messages: [] };
    }
    const collected = stop();
    let recovered = missed.recovered;
    let last = since.offset;
    const frames: string[] = [];
    for (const kept of missed.messages) {
      frames.push(events.message(channel, kept.messageJson, false, { offset: kept.offset, epoch: since.epoch }));
      last = kept.offset;
    }
    for (const { position, frame } of collected) {
      const sameEpoch = position !== undefined && position.epoch === since.epoch;
      if (sameEpoch && position.offset <= last) continue; // replayed already
      if (sameEpoch) {
        if (position.offset !== last + 1) recovered = false; // a gap (an outage on the way)
        last = position.offset;
      }
      frames.push(frame);
    }
    return { frames, recovered };
  }
}
