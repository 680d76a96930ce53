// On open: every connection is subscribed to "announcements" by the server, and greeted.
import { createServer } from 'uws-pubsub-bench';

const server = createServer({
  port: Number(process.env.PORT ?? 9000),
  hooks: {
    onOpen(conn) {
      conn.subscribe('announcements');
      conn.send({ event: 'hello', connection: conn.id });
    },
  },
});
const { port } = await server.listen();
console.log(`listening on ws://127.0.0.1:${port}/pubsub`);
