/** Checks on the server's JSON events that several scenarios share. */
import type { Connection } from '../connection.js';
import { PROTOCOL_ADAPTERS } from '../protocols/index.js';
import type { ClientContext } from '../client-context.js';

export { awaitReply, expectEvent } from '../protocols/contract.js';

/** Opens the protocol (our welcome), subscribes to the run's `--channel` and waits for the ack; counts the client as subscribed. */
export async function subscribeToRunChannel(ctx: ClientContext, conn: Connection): Promise<void> {
  const { options } = ctx;
  const protocol = PROTOCOL_ADAPTERS[options.protocol];
  await protocol.opened(conn, options.replyTimeout);
  await protocol.subscribe(conn, options.channel, options.replyTimeout);
  ctx.counters.subscribed++;
}
