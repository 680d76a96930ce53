// The simplest server: /pubsub, /health and /publish on PORT (9000 by default).
import { createServer } from 'uws-pubsub-bench';
const { port } = await createServer({ port: Number(process.env.PORT ?? 9000) }).listen();
console.log(`listening on ws://127.0.0.1:${port}/pubsub`);
