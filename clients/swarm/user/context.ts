/**
 * What runs a user scenario (scenario-api.ts) as one of the swarm's scenarios: each client gets a
 * ScenarioContext over its worker's ClientContext, and every socket it opened is dropped when its
 * function ends, however it ends, so a scenario that forgets to close holds no file past its client.
 */
import { SwarmError, nowMicros, record } from '../metrics.js';
import { PROTOCOL_ADAPTERS, PROTOCOLS, type ProtocolName } from '../protocols/index.js';
import type { ConnectOptions, ScenarioContext, ScenarioSocket, UserScenario } from '../scenario-api.js';
import type { ClientContext, Scenario } from '../client-context.js';
import { UserSocket } from './socket.js';
import type { Connection } from '../connection.js';

class UserContext implements ScenarioContext {
  private readonly connections: Connection[] = [];

  constructor(private readonly client: ClientContext) {}

  get index(): number {
    return this.client.index;
  }

  get clients(): number {
    return this.client.options.clients;
  }

  get data(): Readonly<Record<string, string>> | null {
    return this.client.data;
  }

  get slot(): number {
    return this.client.slot;
  }

  get iteration(): number {
    return this.client.iteration;
  }

  get options(): ScenarioContext['options'] {
    return this.client.options;
  }

  async connect(options: ConnectOptions = {}): Promise<ScenarioSocket> {
    const protocol = options.protocol ?? this.client.options.protocol;
    if (!PROTOCOLS.includes(protocol as ProtocolName)) throw new SwarmError('script', `connect: protocol must be one of ${PROTOCOLS.join(', ')} (got ${JSON.stringify(protocol)})`);
    const adapter = PROTOCOL_ADAPTERS[protocol];
    const conn = await this.client.connect(options.url === undefined ? undefined : targetUrl(options.url, this.client.url));
    this.connections.push(conn);
    const timeoutMs = this.client.options.replyTimeout;
    return new UserSocket(conn, adapter, await adapter.opened(conn, timeoutMs), timeoutMs);
  }

  async time<T>(name: string, step: () => T | Promise<T>): Promise<T> {
    const began = nowMicros();
    const result = await step();
    this.recordMicros(name, nowMicros() - began);
    return result;
  }

  record(name: string, ms: number): void {
    if (typeof ms !== 'number' || !(ms >= 0) || ms === Infinity) throw new SwarmError('script', `record ${String(name)}: ms must be a finite number >= 0 (got ${String(ms)})`);
    this.recordMicros(name, ms * 1000);
  }

  check(condition: unknown, name: string): boolean {
    const passed = Boolean(condition);
    this.client.metrics.check(name, passed);
    return passed;
  }

  sleep(ms: number): Promise<void> {
    return this.client.sleep(ms);
  }

  sleepUntil(at: number): Promise<void> {
    return this.client.sleepUntil(at);
  }

  barrier(): Promise<number> {
    if (!this.client.barrierAllowed) throw new SwarmError('script', 'barrier() waits for every client, and in concurrency stages clients come and go: there is no every client');
    return this.client.barrier();
  }

  /** Drops every socket this client opened. */
  end(): void {
    for (const conn of this.connections) conn.terminate();
  }

  private recordMicros(name: string, micros: number): void {
    if (name === 'rtt') record(this.client.histograms.rtt, micros);
    else this.client.metrics.time(name, micros);
  }
}

/** A path is taken on the client's own server; a ws:// or wss:// URL as it is. */
function targetUrl(given: string, base: string): string {
  if (typeof given !== 'string') throw new SwarmError('script', `connect: url must be a path or a ws:// URL (got ${typeof given})`);
  try {
    const url = new URL(given, base);
    if (url.protocol === 'ws:' || url.protocol === 'wss:') return url.toString();
  } catch {
    // said below
  }
  throw new SwarmError('script', `connect: url must be a path or a ws:// or wss:// URL (got ${JSON.stringify(given).slice(0, 120)})`);
}

/** The swarm scenario that runs `scenario` for each client. */
export function userScenario(scenario: UserScenario): Scenario {
  return async (client) => {
    const ctx = new UserContext(client);
    try {
      await scenario(ctx);
    } finally {
      ctx.end();
    }
  };
}
