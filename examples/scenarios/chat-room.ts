/**
 * A chat-room user, as docs/scenarios.md builds it up: each client is a user of
 * examples/scenarios/rooms.csv (row `index` mod rows: a name and a room) and joins that room in its
 * block of 30 clients (so a room holds about 10 users however many clients run), says `--rounds`
 * things (default 3) a second apart, and times how long the server takes to take each one (`publish`,
 * the ack) and to bring it back to the sender through the room (`roundtrip`). Run it:
 *
 *   pubsub-swarm --scenario examples/scenarios/chat-room.ts --data examples/scenarios/rooms.csv --clients 1000 --ramp 5
 */
import type { ScenarioContext } from 'uws-pubsub-bench/scenario';

export default async function chatRoom(ctx: ScenarioContext): Promise<void> {
  const room = `room-${ctx.data?.room ?? 'lobby'}.${Math.floor(ctx.index / 30)}`;
  const socket = await ctx.connect();
  ctx.check(typeof socket.welcome?.connection === 'string', 'welcome names the connection');

  await ctx.time('subscribe', () => socket.subscribe(room));
  for (let round = 1; round <= ctx.options.rounds; round++) {
    // Due a second apart from the client's slot on the ramp, however late the connect finished.
    await ctx.sleepUntil(ctx.slot + round * 1000);
    const text = { from: ctx.data?.name ?? `user-${ctx.index}`, round, sent: Date.now() };
    const sentAt = performance.now();
    await ctx.time('publish', () => socket.publish(room, text));
    // Others in the room talk too: read until our own message comes back.
    for (;;) {
      const { message } = await socket.message<typeof text>();
      if (message.from === text.from && message.round === round) break;
    }
    ctx.record('roundtrip', performance.now() - sentAt);
  }
  const closed = await socket.close();
  ctx.check(closed.code === 1000, 'closed cleanly');
}
