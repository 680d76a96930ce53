// A push trap: every message a client publishes is wrapped with who sent it and when, before anyone
// receives it; a message saying "spam" is dropped (the publisher still gets its ack).
import { createServer } from 'uws-pubsub-bench';

const server = createServer({
  port: Number(process.env.PORT ?? 9000),
  hooks: {
    onPublish: [
      (_conn, _channel, message) => (message === 'spam' ? false : message),
      (conn, _channel, message) => ({ from: conn.user ?? `anonymous ${conn.id}`, at: new Date().toISOString(), message }),
    ],
  },
});
const { port } = await server.listen();
console.log(`listening on ws://127.0.0.1:${port}/pubsub`);
