/**
 * bench-vs-artillery's flow, for the swarm (flow.yml is the same flow for Artillery): a virtual user
 * connects, reads the welcome, subscribes to a channel of its own, then 10 times waits a second,
 * publishes a message on it (no id: no ack, as Artillery's flow sends it) and waits for the message to
 * come back, timing that as `echo`; then closes. The same frames on the wire from both tools.
 */
import type { ScenarioContext } from '../../clients/swarm/scenario-api.js';

/** Publishes per virtual user, and the wait before each, as flow.yml has them. */
export const PUBLISHES = 10;
export const THINK_MS = 1000;

export default async function flow(ctx: ScenarioContext): Promise<void> {
  const socket = await ctx.connect();
  const channel = `vu-${String(socket.welcome?.connection)}`;
  await socket.subscribe(channel);
  for (let n = 1; n <= PUBLISHES; n++) {
    await ctx.sleep(THINK_MS);
    await ctx.time('echo', async () => {
      socket.send({ action: 'publish', payload: { channel, message: { n } } });
      await socket.expect({ event: 'message', channel });
    });
  }
  await socket.close();
}
