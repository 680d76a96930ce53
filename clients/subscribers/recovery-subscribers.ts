/**
 * The subscriber process of bench-recovery (forked, so that its CPU is read apart from the publisher's
 * and the servers'). Messages from the parent: `start` (the plans), `go` (publishing starts: schedule
 * the drops), `finish` (each channel's last offset: wait until every subscriber holds it, then report).
 */
import { RecoveringSubscriber, type SubscriberPlan, type SubscriberResult } from './recovering-subscriber.js';

export type ToSubscribers =
  | { type: 'start'; plans: SubscriberPlan[] }
  | { type: 'go' }
  | { type: 'finish'; finals: Record<string, number>; timeoutMs: number };

export type FromSubscribers =
  | { type: 'subscribed'; count: number }
  | { type: 'failed'; error: string }
  | { type: 'progress'; dropped: number; back: number }
  | { type: 'results'; results: SubscriberResult[]; caughtUp: boolean };

/** Subscribers connect this many at a time. */
const CONNECT_BATCH = 100;

const send = (message: FromSubscribers): void => void process.send?.(message);
let subscribers: RecoveringSubscriber[] = [];
let progress: NodeJS.Timeout | null = null;

process.on('message', (message: ToSubscribers) => {
  if (message.type === 'start') void start(message.plans);
  else if (message.type === 'go') go();
  else void finish(message.finals, message.timeoutMs);
});
process.on('disconnect', () => process.exit(0));

async function start(plans: SubscriberPlan[]): Promise<void> {
  subscribers = plans.map((plan) => new RecoveringSubscriber(plan));
  try {
    for (let i = 0; i < subscribers.length; i += CONNECT_BATCH) await Promise.all(subscribers.slice(i, i + CONNECT_BATCH).map((s) => s.start()));
    send({ type: 'subscribed', count: subscribers.length });
  } catch (err) {
    send({ type: 'failed', error: (err as Error).message });
  }
}

function go(): void {
  for (const s of subscribers) s.schedule();
  progress = setInterval(() => {
    let dropped = 0;
    let back = 0;
    for (const s of subscribers) {
      if (s.dropped) dropped++;
      if (s.back) back++;
    }
    send({ type: 'progress', dropped, back });
  }, 1000);
}

/** Waits (polling every 20 ms, at most `timeoutMs`) until every subscriber is live and holds its channel's last offset. */
async function finish(finals: Record<string, number>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const caughtUp = (): boolean => subscribers.every((s) => s.live && s.last >= (finals[s.plan.channel] ?? 0));
  while (!caughtUp() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  const done = caughtUp();
  if (progress) clearInterval(progress);
  send({ type: 'results', results: subscribers.map((s) => s.stop()), caughtUp: done });
  process.disconnect?.();
}
