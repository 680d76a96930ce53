// An authenticator that checks channel access: the client names itself with ?user=..., and may only
// subscribe to channels of the rooms that user belongs to (an application's own table, here a Map).
import { createServer, Refusal } from 'uws-pubsub-bench';

const rooms = new Map([
  ['alice', ['room:lobby', 'room:staff']],
  ['bob', ['room:lobby']],
]);

const server = createServer({
  port: Number(process.env.PORT ?? 9000),
  hooks: {
    authenticate(request) {
      const user = new URL(request.url, 'http://x').searchParams.get('user');
      if (!user || !rooms.has(user)) throw new Refusal(401, 'unknown user');
      return { user };
    },
    canSubscribe: (conn, channel) => rooms.get(conn.user!)!.includes(channel),
  },
});
const { port } = await server.listen();
console.log(`listening on ws://127.0.0.1:${port}/pubsub`);
