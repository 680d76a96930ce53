/**
 * The sockets one WebSocket endpoint holds open, and the three steps of shutdown that every endpoint
 * takes the same way (server/index.ts `close()`): goodbye to each, wait until what they were sent has
 * left this process, end each. uWS ends a socket with its buffered frames still in memory, and a process
 * that exits then takes them along (the client sees 1006 and loses what it was acked), so the ends wait
 * for {@link OpenSockets.buffered} to reach 0, or for the shutdown timeout.
 */
import type { WebSocket } from '../engine.js';
import type { GoodbyeReason } from '../protocol/index.js';
import { userDataOf } from './context.js';

export class OpenSockets<T extends { endedByServer: boolean }> implements Iterable<WebSocket<T>> {
  private readonly open = new Set<WebSocket<T>>();

  /** `goodbye` says goodbye to one socket (at most once: it marks the socket as told). */
  constructor(private readonly goodbye: (ws: WebSocket<T>, reason: GoodbyeReason) => void) {}

  add(ws: WebSocket<T>): void {
    this.open.add(ws);
  }

  delete(ws: WebSocket<T>): void {
    this.open.delete(ws);
  }

  has(ws: WebSocket<T>): boolean {
    return this.open.has(ws);
  }

  get size(): number {
    return this.open.size;
  }

  [Symbol.iterator](): Iterator<WebSocket<T>> {
    return this.open[Symbol.iterator]();
  }

  /** Shutdown, first step: goodbye to every socket. */
  goodbyeAll(reason: GoodbyeReason): void {
    for (const ws of this.open) this.goodbye(ws, reason);
  }

  /** Bytes uWS still holds in this process for the sockets, summed (shutdown waits for 0). */
  buffered(): number {
    let bytes = 0;
    for (const ws of this.open) bytes += ws.getBufferedAmount();
    return bytes;
  }

  /** Shutdown, last step: ends every socket with `code`, marked as ended by the server (its close is not the client's). */
  endAll(code: number, reason: string): void {
    for (const ws of [...this.open]) {
      userDataOf(ws).endedByServer = true;
      ws.end(code, reason);
    }
  }
}
