// A receiver: {"action":"rpc","payload":{"method":"echo","params":..},"id":1} is answered with
// {"event":"result","result":..,"id":1}; "shout" answers in capitals and fails on anything but text
// (a ClientError's message is the client's; any other exception's text stays in the log).
import { ClientError, createServer } from 'uws-pubsub-bench';

const server = createServer({
  port: Number(process.env.PORT ?? 9000),
  hooks: {
    rpc: {
      echo: (_conn, params) => params,
      shout(_conn, params) {
        if (typeof params !== 'string') throw new ClientError('shout takes a string');
        return params.toUpperCase();
      },
    },
  },
});
const { port } = await server.listen();
console.log(`listening on ws://127.0.0.1:${port}/pubsub`);
