/** Picks the broker for a server's options. */
import { LocalBroker } from './local.js';
import type { Broker } from './types.js';

export type { Broker, DeliverHandler } from './types.js';

/** What the factory needs to choose and configure a broker. */
export interface BrokerOptions {
  expire: number;
}

/** Creates the broker: in memory (the default). */
export function createBroker(options: BrokerOptions): Broker {
  return new LocalBroker({ expire: options.expire });
}
