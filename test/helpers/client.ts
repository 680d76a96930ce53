/**
 * A test client over a real WebSocket: frames are queued as they arrive and read in order with
 * `next()`, so tests wait on events instead of sleeping.
 */
import WebSocket from 'ws';

export interface Closed {
  code: number;
  reason: string;
}

export class TestClient {
  private readonly frames: (string | Buffer)[] = [];
  private readonly waiters: ((frame: string | Buffer) => void)[] = [];
  /** Resolves when the socket closes. */
  readonly closed: Promise<Closed>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const frame = isBinary ? data : data.toString();
      const waiter = this.waiters.shift();
      if (waiter) waiter(frame);
      else this.frames.push(frame);
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** Connects; rejects with the HTTP status and body (`status`, `body`) when the upgrade is refused. */
  static open(url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options);
      const client = new TestClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk));
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { status: res.statusCode, body })));
      });
      ws.once('error', reject);
    });
  }

  /** Connects to `/pubsub` and reads the welcome frame. */
  static async pubsub(base: string): Promise<{ client: TestClient; welcome: Record<string, unknown> }> {
    const client = await TestClient.open(`${base}/pubsub`);
    const welcome = await client.next();
    return { client, welcome };
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  /** The next frame, parsed as JSON when it is text. */
  async next(timeoutMs = 3000): Promise<Record<string, any>> {
    const frame = await this.nextRaw(timeoutMs);
    return typeof frame === 'string' ? JSON.parse(frame) : { binary: frame };
  }

  /** The next frame as it came. */
  nextRaw(timeoutMs = 3000): Promise<string | Buffer> {
    const queued = this.frames.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(done), 1);
        reject(new Error(`no frame within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (frame: string | Buffer) => {
        clearTimeout(timer);
        resolve(frame);
      };
      this.waiters.push(done);
    });
  }

  /** Sends a request and reads the next frame. */
  async request(frame: unknown): Promise<Record<string, any>> {
    this.send(frame);
    return this.next();
  }

  /** Resolves true when no frame arrives within `ms`. */
  async silentFor(ms: number): Promise<boolean> {
    try {
      const frame = await this.nextRaw(ms);
      this.frames.unshift(frame);
      return false;
    } catch {
      return true;
    }
  }

  async close(): Promise<Closed> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    return this.closed;
  }
}
