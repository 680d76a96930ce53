// A JWT-protected server: clients must bring an HS256 token signed with JWT_SECRET (?token=,
// Authorization: Bearer, or the token cookie). Its "sub" is the user, who alone may use user:<sub>:*
// channels; a missing, forged or expired token gets 401 at the upgrade.
import { createServer } from 'uws-pubsub-bench';

const jwtSecret = process.env.JWT_SECRET;
if (!jwtSecret || jwtSecret.length < 32) {
  console.error('set JWT_SECRET to a secret of at least 32 bytes');
  process.exit(2);
}
const server = createServer({ port: Number(process.env.PORT ?? 9000), jwtSecret, requireAuth: true });
const { port } = await server.listen();
console.log(`listening on ws://127.0.0.1:${port}/pubsub`);
