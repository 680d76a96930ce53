/**
 * The C10k echo sequence, on the user scenario API (scenario-api.ts) as anyone's own scenario would
 * be: in our contract read welcome, then `rounds` times wait `delay`, send, read the echo (which must
 * be the same text), then read goodbye and see a 1000 close. Round trips go to `rtt`. Other protocols
 * (clients/swarm/protocols/) open, frame the echo and end the sequence their own way.
 *
 * Round r is due at the client's ramp slot + r x delay, not r x delay after its connect finished: connects
 * complete in clumps when the swarm is busy, and rounds timed from them would arrive in the same clumps,
 * so the swarm would measure its own bursts. From the slots, sends keep the ramp's even spacing.
 */
import { SwarmError, nowMicros } from '../metrics.js';
import { PROTOCOL_ADAPTERS } from '../protocols/index.js';
import type { UserScenario } from '../scenario-api.js';
import type { UserSocket } from '../user/socket.js';

export const echo: UserScenario = async (ctx) => {
  const { options } = ctx;
  const socket = await ctx.connect();
  const protocol = PROTOCOL_ADAPTERS[socket.protocol];
  const pad = 'x'.repeat(options.payload);
  for (let round = 1; round <= options.rounds; round++) {
    await ctx.sleepUntil(ctx.slot + round * options.delay * 1000);
    const text = protocol.echoFrame(`{"client":${ctx.index},"round":${round},"pad":"${pad}"}`);
    const sentAt = nowMicros();
    socket.send(text);
    const reply = await socket.next();
    // Only the echo is a round trip: any other reply (a goodbye in its place) is an error, not timed.
    if (reply !== text) throw new SwarmError('protocol_mismatch', `round ${round}: echo differs from what was sent: ${reply.slice(0, 80)}`);
    ctx.record('rtt', (nowMicros() - sentAt) / 1000);
  }
  await protocol.endEcho((socket as UserSocket).connection, options.replyTimeout);
};
