/**
 * The C100k sequence: every client is connected at the same time, runs the echo sequence, and receives
 * every broadcast. Each client opens `/pubsub`, reads welcome, subscribes to `channel`, and waits at the
 * barrier until every client of every worker is subscribed. From that common instant:
 *
 * - echo: `rounds` times a `ping` whose id carries the client, the round and the padding, answered by a
 *   `pong` with the same id; round r of client i is due at (i / clients + r - 1) x delay, so the pings
 *   are spread evenly (clients / delay per second). `/echo` would fit the sequence better, but an
 *   `/echo` socket cannot subscribe, and every socket must receive the broadcasts.
 * - broadcast: client 0 publishes message k (`{"t":due,"b":k}`) at (k - 1/2) x broadcastEvery, for
 *   every k that falls inside the rounds; the server carries it to every subscriber (through Redis when
 *   there are several server processes). Each client counts each k once, and times its arrival from its
 *   due moment (fanout). A duplicate or one out of order is a protocol mismatch; a missing one shows as a lost delivery
 *   (published x subscribed - delivered).
 *
 * Every client listens until the rounds and `drain` are over, so all are still connected for the last
 * broadcast, and then, if that one has not come yet, up to `replyTimeout` more for it: a copy on its way
 * (a server or a swarm far behind) is late, not lost; one not in by then counts as lost. Then it closes.
 *
 * What a client keeps while it waits is one {@link CrowdListener}, the reader of its frames: a C100k
 * worker holds 12,500 of them, and closures over the scenario's scope (a reader, a close handler, an
 * echo and a publisher function each) cost a worker about 800 B a client more.
 */
import type { Connection, RawReader } from '../connection.js';
import { SwarmError, nowMicros, record } from '../metrics.js';
import { broadcastCount } from '../options.js';
import { contract } from '../protocols/contract.js';
import { subscribeToRunChannel } from './frames.js';
import { CLOSING_BRACE, dueOf, intAfter } from './raw-fields.js';
import type { ClientContext, Scenario } from '../client-context.js';

const BROADCAST_KEY = Buffer.from('"b":');

/** The ping awaiting its pong. */
interface Pending {
  id: string;
  timer: NodeJS.Timeout;
  resolve: () => void;
  reject: (err: SwarmError) => void;
}

/** One client's reading of its socket: broadcasts counted and timed, pongs matched to its ping. */
class CrowdListener implements RawReader {
  /** Broadcasts arrive in publish order (one publisher; one TCP path, or Redis, which keeps a publisher's order), so the last one seen is all a client keeps to catch a duplicate. */
  lastBroadcast = 0;
  /** The first thing that went wrong, reported when the client ends. */
  trouble: string | null = null;
  private pending: Pending | null = null;
  /** Set while the client waits past the drain for the last broadcast. */
  private lastArrived: (() => void) | null = null;

  constructor(
    private readonly ctx: ClientContext,
    private readonly conn: Connection,
    private readonly lastDue: number,
  ) {}

  /** A broadcast copy is read as bytes (a worker gets one per client, all in the same moment); the few other frames (pongs, the publisher's acks) are parsed. */
  rawFrame(data: Buffer, from: number, to: number): void {
    const kind = contract.classify(data, from, to);
    if (kind === 'message') {
      const due = dueOf(data, from, to);
      const k = intAfter(data, from, to, BROADCAST_KEY, CLOSING_BRACE);
      if (Number.isNaN(due) || Number.isNaN(k)) {
        this.trouble ??= `unexpected message ${data.toString('utf8', from, Math.min(to, from + 120))}`;
      } else if (k <= this.lastBroadcast) {
        this.trouble ??= `broadcast ${k} arrived after ${this.lastBroadcast}`;
      } else {
        this.lastBroadcast = k;
        this.ctx.counters.delivered++;
        record(this.ctx.histograms.fanout, this.conn.readAt - due);
        if (k === this.lastDue) this.lastArrived?.();
      }
    } else if (kind === 'other') {
      const frame = data.toString('utf8', from, to);
      if (frame.startsWith('{"event":"pong"')) {
        const { id } = JSON.parse(frame) as { id: unknown };
        if (this.pending && id === this.pending.id) this.settle(null);
        else this.trouble ??= `pong with id ${JSON.stringify(id).slice(0, 60)} while waiting for ${this.pending?.id ?? 'none'}`;
      } else {
        this.trouble ??= `server sent ${frame.slice(0, 160)}`;
      }
    }
  }

  /** Sends a ping with `id`; resolves on its pong, rejects on a timeout or the socket's close. */
  echo(id: string): Promise<void> {
    const { replyTimeout } = this.ctx.options;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.settle(new SwarmError('timeout', `no pong for ${id.slice(0, 40)} within ${replyTimeout} ms`)), replyTimeout);
      this.pending = { id, timer, resolve, reject };
      this.conn.send(JSON.stringify({ action: 'ping', id }));
    });
  }

  /** The socket closed: a ping in flight fails, a wait for the last broadcast ends. */
  closed(): void {
    this.settle(new SwarmError('unexpected_close', 'the server closed the socket during the echo rounds'));
    this.lastArrived?.();
  }

  /** Waits up to `ms` for the last broadcast, unless it is in or the socket has closed. */
  async awaitLast(ms: number): Promise<void> {
    if (this.lastBroadcast >= this.lastDue || this.conn.isClosed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.lastArrived = () => {
        clearTimeout(timer);
        this.lastArrived = null;
        resolve();
      };
    });
  }

  private settle(err: SwarmError | null): void {
    const pending = this.pending;
    if (!pending) return;
    this.pending = null;
    clearTimeout(pending.timer);
    if (err) pending.reject(err);
    else pending.resolve();
  }
}

/** Client 0's part: broadcast k at (k - 1/2) x broadcastEvery after the release. */
async function publishBroadcasts(ctx: ClientContext, conn: Connection, released: number, lastDue: number): Promise<void> {
  const { options } = ctx;
  for (let k = 1; k <= lastDue; k++) {
    const due = released + (k - 0.5) * options.broadcastEvery * 1000;
    await ctx.sleepUntil(due);
    conn.send(JSON.stringify({ action: 'publish', payload: { channel: options.channel, message: { t: Math.round(due * 1000), b: k } } }));
    ctx.counters.published++;
  }
}

export const crowd: Scenario = async (ctx) => {
  const { options, histograms, index } = ctx;
  const conn = await ctx.connect();
  try {
    await subscribeToRunChannel(ctx, conn);
    const released = await ctx.barrier();
    const lastDue = broadcastCount(options);
    const listener = new CrowdListener(ctx, conn, lastDue);
    conn.streamRaw(listener);
    conn.onClose(listener.closed.bind(listener));
    const broadcasting = index === 0 ? publishBroadcasts(ctx, conn, released, lastDue) : null;
    broadcasting?.catch(() => undefined); // awaited below; a deadline must not count as unhandled meanwhile
    const delay = options.delay * 1000;
    const pad = options.payload > 0 ? `.${'x'.repeat(options.payload)}` : '';
    for (let round = 1; round <= options.rounds; round++) {
      await ctx.sleepUntil(released + (index / options.clients + round - 1) * delay);
      if (conn.isClosed) throw new SwarmError('unexpected_close', `the server closed the socket before round ${round}`);
      const sentAt = nowMicros();
      await listener.echo(`${index}.${round}${pad}`);
      record(histograms.rtt, nowMicros() - sentAt);
    }
    await broadcasting;
    await ctx.sleepUntil(released + options.rounds * delay + options.drain * 1000);
    await listener.awaitLast(options.replyTimeout);
    if (listener.trouble) throw new SwarmError('protocol_mismatch', listener.trouble);
    if (conn.isClosed) throw new SwarmError('unexpected_close', 'the server closed the socket while the broadcasts ran');
    await conn.close(options.replyTimeout);
  } finally {
    conn.terminate();
  }
};
