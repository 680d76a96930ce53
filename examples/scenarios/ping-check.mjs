/**
 * The smallest useful scenario, in plain JavaScript: every client pings the server `--rounds` times
 * (default 3) and checks each pong; a pong slower than 50 ms fails the check `pong under 50 ms`
 * without failing the client. A threshold on the check then decides the exit code in CI:
 *
 *   pubsub-swarm --scenario examples/ping-check.mjs --clients 2000 --ramp 2
 */
export default async function pingCheck(ctx) {
  const socket = await ctx.connect();
  for (let round = 1; round <= ctx.options.rounds; round++) {
    const started = performance.now();
    const pong = await ctx.time('ping', () => socket.request('ping'));
    ctx.check(pong.event === 'pong', 'answered with pong');
    ctx.check(performance.now() - started < 50, 'pong under 50 ms');
    await ctx.sleep(200);
  }
  await socket.close();
}
