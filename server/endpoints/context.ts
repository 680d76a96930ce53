/** What every endpoint of one server shares. */
import type { HttpRequest, HttpResponse, TemplatedApp, us_socket_context_t } from 'uWebSockets.js';
import type { Broker } from '../broker/index.js';
import type { Uws } from '../engine.js';
import type { ServerOptions } from '../options.js';
import type { SlowIo } from '../slow-io/index.js';
import type { Stats } from '../stats.js';

export interface ServerContext {
  readonly uws: Uws;
  readonly app: TemplatedApp;
  readonly options: ServerOptions;
  readonly stats: Stats;
  readonly broker: Broker;
  readonly slowIo: SlowIo;
  /** Set when shutdown starts: upgrades are refused from then on. */
  shuttingDown: boolean;
}

/** WebSocket close codes the server uses. */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  policy: 1008,
  tooBig: 1009,
} as const;

/** uWS `send` results. */
export const SEND = { backpressure: 0, success: 1, dropped: 2 } as const;

/** Completes a WebSocket upgrade with `userData`, copying the handshake headers out of `req`. */
export function acceptUpgrade<T>(res: HttpResponse, req: HttpRequest, context: us_socket_context_t, userData: T): void {
  res.upgrade(
    userData,
    req.getHeader('sec-websocket-key'),
    req.getHeader('sec-websocket-protocol'),
    req.getHeader('sec-websocket-extensions'),
    context,
  );
}
