/**
 * A subscriber that drops its connection once and comes back with `since` (bench-recovery): it checks
 * every message's offset against the one it expects next, so that at the end it can say whether it got
 * every message of its channel exactly once and in order, and how long its recovery took (from the
 * start of the new connection to the `subscribed` ack, after the replay).
 */
import WebSocket from 'ws';

/** What one subscriber does. */
export interface SubscriberPlan {
  channel: string;
  /** Its first server, and the one it comes back to. */
  first: string;
  second: string;
  /** When it drops its connection (abruptly, no close handshake), ms after the publishing started. */
  dropAtMs: number;
  /** How long it stays away before it connects again, ms. */
  awayMs: number;
}

/** What it saw. */
export interface SubscriberResult {
  channel: string;
  /** Messages received, replayed ones included. */
  received: number;
  /** The last offset it holds in order (0: none yet). */
  last: number;
  /** Messages whose offset it had already (twice), and offsets it never got (missed). */
  duplicates: number;
  missed: number;
  /** Messages whose epoch differed from the first one's. */
  epochChanges: number;
  /** Whether it dropped and came back; the ack's `recovered`; replayed messages; ms to the ack. */
  dropped: boolean;
  recovered: boolean | null;
  replayed: number;
  recoveryMs: number | null;
  awayMs: number;
  /** What went wrong outside the offsets (a refused connection, an error frame), first one. */
  error: string | null;
}

const CONNECT_TIMEOUT_MS = 10_000;

export class RecoveringSubscriber {
  private ws: WebSocket | null = null;
  private epoch: string | null = null;
  private next = 1;
  private readonly result: SubscriberResult;
  private reconnectStarted = 0;
  private recovering = false;
  private dropTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(readonly plan: SubscriberPlan) {
    this.result = {
      channel: plan.channel, received: 0, last: 0, duplicates: 0, missed: 0, epochChanges: 0,
      dropped: false, recovered: null, replayed: 0, recoveryMs: null, awayMs: plan.awayMs, error: null,
    };
  }

  /** Connects to its first server and subscribes; resolves on the ack. */
  start(): Promise<void> {
    return this.connect(this.plan.first, undefined);
  }

  /** Drops its connection `plan.dropAtMs` after now (the moment publishing starts), then comes back. */
  schedule(): void {
    this.dropTimer = setTimeout(() => this.drop(), this.plan.dropAtMs);
  }

  /** The offset it holds in order: the channel's last once it has caught up. */
  get last(): number {
    return this.next - 1;
  }

  /** Whether it has dropped its connection, and whether it has come back (its recovery acked). */
  get dropped(): boolean {
    return this.result.dropped;
  }

  get back(): boolean {
    return this.result.recoveryMs !== null;
  }

  /** Whether it is connected and subscribed (not away, not waiting for its ack). */
  get live(): boolean {
    return this.ws !== null && !this.recovering;
  }

  /** Stops (the run is over) and returns what it saw. */
  stop(): SubscriberResult {
    this.stopped = true;
    if (this.dropTimer) clearTimeout(this.dropTimer);
    this.ws?.terminate();
    this.result.last = this.next - 1;
    return this.result;
  }

  private drop(): void {
    if (this.stopped || !this.ws) return;
    this.result.dropped = true;
    this.ws.terminate();
    this.ws = null;
    setTimeout(() => {
      if (this.stopped) return;
      this.recovering = true;
      this.reconnectStarted = performance.now();
      this.connect(this.plan.second, { offset: this.next - 1, epoch: this.epoch ?? '' }).catch((err: Error) => this.fail(err.message));
    }, this.plan.awayMs);
  }

  private fail(error: string): void {
    this.result.error ??= error;
  }

  private connect(url: string, since: { offset: number; epoch: string } | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${url}/pubsub`);
      this.ws = ws;
      const timer = setTimeout(() => reject(new Error(`no subscribed ack from ${url} within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
      ws.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      ws.on('message', (data) => {
        const frame = JSON.parse(String(data)) as Record<string, any>;
        switch (frame.event) {
          case 'welcome':
            ws.send(JSON.stringify({ action: 'subscribe', payload: { channel: this.plan.channel, ...(since ? { since } : {}) }, id: 's' }));
            return;
          case 'message':
            return this.onMessage(frame);
          case 'subscribed':
            clearTimeout(timer);
            if (since) {
              this.result.recoveryMs = performance.now() - this.reconnectStarted;
              this.result.recovered = frame.recovered === true;
              this.recovering = false;
            }
            return resolve();
          default:
            this.fail(`unexpected frame ${String(data).slice(0, 200)}`);
        }
      });
      ws.on('close', (code) => {
        if (ws === this.ws && !this.stopped) this.fail(`connection closed by the server (${code})`);
      });
    });
  }

  private onMessage(frame: Record<string, any>): void {
    const offset = frame.offset as number;
    this.result.received++;
    if (this.recovering) this.result.replayed++;
    if (typeof offset !== 'number') return this.fail('a message without an offset (is the server running with --history?)');
    if (this.epoch === null) this.epoch = frame.epoch as string;
    else if (frame.epoch !== this.epoch) this.result.epochChanges++;
    if (offset === this.next) this.next++;
    else if (offset < this.next) this.result.duplicates++;
    else {
      this.result.missed += offset - this.next;
      this.next = offset + 1;
    }
  }
}
