// A PostgreSQL monitor: `NOTIFY alerts, '{"level":"high"}'` (or pg_notify) reaches every subscriber of
// the channel "alerts" as a message. DATABASE_URL defaults to the local test database.
import { createServer, pgNotify } from 'uws-pubsub-bench';

const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const server = createServer({
  port: Number(process.env.PORT ?? 9000),
  monitors: [pgNotify({ url, channels: ['alerts'] })],
});
const { port } = await server.listen();
console.log(`listening on ws://127.0.0.1:${port}/pubsub`);
