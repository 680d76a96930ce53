// Presence: who is in a room. Clients name themselves with ?user=...; a subscriber of "room:lobby" asks
// {"action":"presence","payload":{"channel":"room:lobby"},"id":1} for the members, and subscribing with
// "join_leave":true brings {"event":"join"|"leave","channel":..,"member":{..}} as people come and go.
// With REDIS_URL set, the rooms span every instance started the same way.
import { createServer } from 'uws-pubsub-bench';

const server = createServer({
  port: Number(process.env.PORT ?? 9000),
  presence: true,
  redis: process.env.REDIS_URL ?? null,
  hooks: {
    authenticate: (request) => ({ user: new URL(request.url, 'http://x').searchParams.get('user') ?? 'guest' }),
  },
});
const { port } = await server.listen();
console.log(`listening on ws://127.0.0.1:${port}/pubsub`);
