/**
 * Monitors: sources outside the server whose changes become messages (realtime-magic's monitors,
 * Channels' data binding). A monitor is a driver behind this interface, one per file; each states in
 * its TSDoc what it guarantees.
 */
import type { Logger } from '../log.js';

/** Where a monitor's messages go. */
export interface MonitorSink {
  /**
   * Publishes through the broker to the subscribers of every instance, as a client's publish would
   * (counted in `published`, cached when `--expire` is set). Resolves once the broker has it.
   */
  publish(channel: string, messageJson: string): Promise<unknown>;
  /**
   * Delivers to the subscribers connected to this instance only, for a source every instance watches
   * by itself (a NOTIFY reaches every listener): through the broker, N instances would deliver N copies.
   */
  publishHere(channel: string, messageJson: string): void;
  /**
   * Resolves true once a publish reaches every instance (the broker is connected; at once for a broker
   * of one process), or false when the server is stopping first. A monitor that must not lose an item
   * (a reliable queue) awaits it before it publishes, since a publish while the broker is away reaches
   * this instance only.
   */
  bridged(): Promise<boolean>;
}

/** A source watched for the server's lifetime. */
export interface Monitor {
  /** What /stats and the log call it, e.g. `pg-notify:orders` or `redis-list:jobs`. */
  readonly name: string;
  /** Connects and starts watching. Rejects, with a message naming the source, when it cannot connect. */
  start(sink: MonitorSink, log: Logger): Promise<void>;
  /** Stops watching; resolves once what it took from the source has been handed to the sink. */
  stop(): Promise<void>;
  /** `watching`, or a word saying why not (`reconnecting`, `stopped`). */
  state(): string;
  /** Its counters for /stats (snake_case). */
  counters(): Record<string, number>;
}

/** A NOTIFY payload or a list item as a message: JSON as it is, anything else as a JSON string. */
export function messageJsonOf(text: string): string {
  try {
    JSON.parse(text);
    return text;
  } catch {
    return JSON.stringify(text);
  }
}
