/**
 * A DevTools-protocol session with a server process started with `inspect` (bench/lib/servers.ts), for
 * what a benchmark may ask of it: a full garbage collection, so that memory is read after one rather
 * than wherever V8's collection cycle happens to be.
 */
import WebSocket from 'ws';

export class InspectorSession {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (result: unknown) => void; reject: (err: Error) => void }>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const reply = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
      const waiter = reply.id === undefined ? undefined : this.pending.get(reply.id);
      if (!waiter) return; // an event, not an answer
      this.pending.delete(reply.id!);
      if (reply.error) waiter.reject(new Error(`inspector: ${reply.error.message}`));
      else waiter.resolve(reply.result);
    });
    ws.on('close', () => {
      for (const waiter of this.pending.values()) waiter.reject(new Error('inspector: the session closed'));
      this.pending.clear();
    });
  }

  /** Connects to the inspector's WebSocket URL (`ws://127.0.0.1:<port>/<id>`). */
  static async open(url: string): Promise<InspectorSession> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const session = new InspectorSession(ws);
    await session.call('HeapProfiler.enable');
    return session;
  }

  /** A full, compacting collection (twice: the second takes what the first's finalizers let go). */
  async collectGarbage(): Promise<void> {
    await this.call('HeapProfiler.collectGarbage');
    await this.call('HeapProfiler.collectGarbage');
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }

  private call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }
}
