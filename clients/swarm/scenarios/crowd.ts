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
 * A client is one {@link CrowdClient} from its barrier on: the reader of its frames, the listener of its
 * close and the alarm of its next round, driven by those calls rather than by a suspended async
 * function, so that what it keeps while it waits is that object alone. A C100k worker holds 12,500 of
 * them, and the async form (its frame, its promises and their closures, a closure for the reader, the
 * close and the echo each) cost a worker about 1.5 KB a client more (heap snapshots, 15,000 clients).
 */
import type { Alarm } from '../alarms.js';
import type { CloseListener, Connection, RawReader } from '../connection.js';
import { SwarmError, nowMicros, record } from '../metrics.js';
import { broadcastCount } from '../options.js';
import { contract } from '../protocols/contract.js';
import { subscribeToRunChannel } from './frames.js';
import { CLOSING_BRACE, dueOf, intAfter } from './raw-fields.js';
import type { BarrierWaiter, ClientContext, Scenario } from '../client-context.js';

const BROADCAST_KEY = Buffer.from('"b":');

/**
 * Where a client is: what its next wake-up, pong, broadcast or close means. `rounds` sleeps until its
 * next ping; `echo` awaits a pong; `drain` sleeps until the rounds and the drain are over; `last` waits
 * for the last broadcast; `closing` closes; `done` has settled the scenario's promise.
 */
type Phase = 'opening' | 'rounds' | 'echo' | 'drain' | 'last' | 'closing' | 'done';

/** The ping's id after the client's index and round: the padding of --payload, made once per size. */
let padding = { bytes: 0, text: '' };
function paddingOf(bytes: number): string {
  if (padding.bytes !== bytes) padding = { bytes, text: bytes > 0 ? `.${'x'.repeat(bytes)}` : '' };
  return padding.text;
}

function pingTimedOut(client: CrowdClient): void {
  client.timedOut();
}

/** One client's sequence from its connect to its close (see the module's comment). */
class CrowdClient implements RawReader, CloseListener, BarrierWaiter, Alarm {
  /** When its alarm is due, epoch ms (Alarm). */
  at = 0;
  /** Broadcasts arrive in publish order (one publisher; one TCP path, or Redis, which keeps a publisher's order), so the last one seen is all a client keeps to catch a duplicate. */
  private lastBroadcast = 0;
  /** The first thing that went wrong, reported when the client ends. */
  private trouble: string | null = null;
  private phase: Phase = 'opening';
  private conn: Connection | null = null;
  /** Epoch ms at which every client passed the barrier: the rounds' and broadcasts' origin. */
  private origin = 0;
  private round = 0;
  /** Epoch µs at which the current ping was sent. */
  private sentAt = 0;
  /** The time limit of the current ping, or of the wait for the last broadcast. */
  private timer: NodeJS.Timeout | null = null;
  /** Client 0's publishing, until the rounds are over. */
  private broadcasting: Promise<void> | null = null;

  constructor(
    private readonly ctx: ClientContext,
    private readonly lastDue: number,
    private readonly resolve: () => void,
    private readonly reject: (err: unknown) => void,
  ) {}

  /** Connects and subscribes (the ramp: short waits, as an async function), then waits at the barrier as this object. */
  async open(): Promise<void> {
    try {
      this.conn = await this.ctx.connect();
      await subscribeToRunChannel(this.ctx, this.conn);
    } catch (err) {
      return this.end(err);
    }
    this.ctx.whenReleased(this);
  }

  released(at: number): void {
    const conn = this.conn!;
    this.origin = at;
    conn.streamRaw(this);
    conn.onClose(this);
    if (this.ctx.index === 0) {
      this.broadcasting = publishBroadcasts(this.ctx, conn, at, this.lastDue);
      this.broadcasting.catch(() => undefined); // awaited after the rounds; a deadline must not count as unhandled meanwhile
    }
    this.nextRound();
  }

  /** The barrier or an alarm failed: the run's deadline. */
  fail(err: Error): void {
    this.end(err);
  }

  wake(): void {
    if (this.phase === 'rounds') this.ping();
    else if (this.phase === 'drain') this.awaitLast();
  }

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
        record(this.ctx.histograms.fanout, this.conn!.readAt - due);
        if (k === this.lastDue && this.phase === 'last') this.finish();
      }
    } else if (kind === 'other') {
      const frame = data.toString('utf8', from, to);
      if (frame.startsWith('{"event":"pong"')) {
        const { id } = JSON.parse(frame) as { id: unknown };
        if (this.phase === 'echo' && id === this.pingId()) this.ponged();
        else this.trouble ??= `pong with id ${JSON.stringify(id).slice(0, 60)} while waiting for ${this.phase === 'echo' ? this.pingId() : 'none'}`;
      } else {
        this.trouble ??= `server sent ${frame.slice(0, 160)}`;
      }
    }
  }

  /** The socket closed: a ping in flight fails, a wait for the last broadcast ends; a sleeping client finds out when it wakes. */
  connectionClosed(): void {
    if (this.phase === 'echo') this.end(new SwarmError('unexpected_close', 'the server closed the socket during the echo rounds'));
    else if (this.phase === 'last') this.finish();
  }

  /** @internal the ping's (or the last broadcast's) time limit has passed */
  timedOut(): void {
    this.timer = null;
    if (this.phase === 'last') return this.finish();
    const { replyTimeout } = this.ctx.options;
    this.end(new SwarmError('timeout', `no pong for ${this.pingId().slice(0, 40)} within ${replyTimeout} ms`));
  }

  /** Round r of client i is due at (i / clients + r - 1) x delay after the release. */
  private nextRound(): void {
    const { options, index } = this.ctx;
    this.round++;
    if (this.round > options.rounds) return this.afterRounds();
    this.phase = 'rounds';
    this.sleepUntil(this.origin + (index / options.clients + this.round - 1) * options.delay * 1000);
  }

  private pingId(): string {
    return `${this.ctx.index}.${this.round}${paddingOf(this.ctx.options.payload)}`;
  }

  private ping(): void {
    const conn = this.conn!;
    if (conn.isClosed) return this.end(new SwarmError('unexpected_close', `the server closed the socket before round ${this.round}`));
    this.phase = 'echo';
    this.timer = setTimeout(pingTimedOut, this.ctx.options.replyTimeout, this);
    this.sentAt = nowMicros();
    conn.send(JSON.stringify({ action: 'ping', id: this.pingId() }));
  }

  private ponged(): void {
    record(this.ctx.histograms.rtt, nowMicros() - this.sentAt);
    this.clearTimer();
    this.nextRound();
  }

  /** Client 0 first finishes publishing; then every client sleeps until the rounds and the drain are over. */
  private afterRounds(): void {
    const broadcasting = this.broadcasting;
    this.broadcasting = null;
    if (broadcasting) return void broadcasting.then(() => this.afterRounds(), (err: unknown) => this.end(err));
    const { options } = this.ctx;
    this.phase = 'drain';
    this.sleepUntil(this.origin + options.rounds * options.delay * 1000 + options.drain * 1000);
  }

  /** Waits up to --reply-timeout for the last broadcast, unless it is in or the socket has closed. */
  private awaitLast(): void {
    if (this.lastBroadcast >= this.lastDue || this.conn!.isClosed) return this.finish();
    this.phase = 'last';
    this.timer = setTimeout(pingTimedOut, this.ctx.options.replyTimeout, this);
  }

  private finish(): void {
    this.clearTimer();
    const conn = this.conn!;
    this.phase = 'closing';
    if (this.trouble) return this.end(new SwarmError('protocol_mismatch', this.trouble));
    if (conn.isClosed) return this.end(new SwarmError('unexpected_close', 'the server closed the socket while the broadcasts ran'));
    conn.close(this.ctx.options.replyTimeout).then(() => this.end(), (err: unknown) => this.end(err));
  }

  private sleepUntil(at: number): void {
    this.at = at;
    this.ctx.wakeAt(this);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Settles the scenario's promise once: resolved without `failure`, rejected with it. */
  private end(...failure: [unknown?]): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    this.clearTimer();
    this.conn?.terminate();
    if (failure.length === 0) this.resolve();
    else this.reject(failure[0]);
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

export const crowd: Scenario = (ctx) => new Promise<void>((resolve, reject) => {
  void new CrowdClient(ctx, broadcastCount(ctx.options), resolve, reject).open();
});
