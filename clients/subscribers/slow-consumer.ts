/**
 * A subscriber that stops reading: it subscribes, then pauses its socket, so whatever is published to
 * it piles up in the kernel's buffers and then in the server's. Resumed, it reads everything the server
 * sent and reports how the connection ended, which for this project's server must be goodbye
 * `slow_consumer` and close 1008 (docs/protocol.md).
 */
import WebSocket from 'ws';

export interface SlowConsumerEnd {
  /** Close code the client saw; 1006 when the connection ended without a close frame. */
  code: number;
  /** The last text frame it read (the goodbye, if the server said one). */
  last: unknown;
  /** Text frames read in all, the welcome and the acks included. */
  frames: number;
}

const CUT_GOODBYE = JSON.stringify({ event: 'goodbye', reason: 'slow_consumer' });

/** Whether a slow consumer ended as the contract says: goodbye `slow_consumer` as its last frame, then 1008. */
export function endedAsCut(end: SlowConsumerEnd): boolean {
  return end.code === 1008 && JSON.stringify(end.last) === CUT_GOODBYE;
}

export interface SlowConsumer {
  /** Reads again and resolves once the server has closed the connection (or after `timeoutMs`, with code 0). */
  resume(timeoutMs?: number): Promise<SlowConsumerEnd>;
  /** Closes the socket from this side, at once (for cleanup). */
  destroy(): void;
}

/** Opens `<base>/pubsub`, subscribes to `channel`, and stops reading once the subscription is confirmed. */
export async function openSlowConsumer(base: string, channel: string): Promise<SlowConsumer> {
  const ws = new WebSocket(`${base}/pubsub`);
  let frames = 0;
  let last: unknown = null;
  let subscribed!: () => void;
  const ready = new Promise<void>((resolve, reject) => {
    subscribed = resolve;
    ws.once('error', reject);
    ws.once('close', (code) => reject(new Error(`closed with ${code} before subscribing`)));
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  // Listening from the start: the welcome can come in the same read as the upgrade's answer.
  ws.on('message', (data) => {
    frames++;
    last = JSON.parse(String(data));
    const event = (last as { event?: string }).event;
    if (event === 'welcome') ws.send(JSON.stringify({ action: 'subscribe', payload: { channel }, id: 1 }));
    else if (event === 'subscribed') subscribed();
  });
  await ready;
  ws.removeAllListeners('error');
  ws.on('error', () => {}); // a reset after the server's close is reported by 'close' as 1006
  ws.pause();
  return {
    async resume(timeoutMs = 15_000) {
      ws.resume();
      let timer!: NodeJS.Timeout;
      const timeout = new Promise<number>((resolve) => (timer = setTimeout(() => resolve(0), timeoutMs)));
      const code = await Promise.race([closed, timeout]).finally(() => clearTimeout(timer));
      if (code === 0) ws.terminate();
      return { code, last, frames };
    },
    destroy() {
      ws.terminate();
    },
  };
}
