/**
 * What the swarm speaks to a server, behind one interface, so that the echo and broadcast scenarios run
 * against servers that do not speak our contract: `contract` (docs/protocol.md), `raw` (any plain
 * WebSocket echo or broadcast server) and `socketio` (Engine.IO v4 / Socket.IO v5 over the WebSocket
 * transport). The other scenarios (slow, pubsub, crowd) use parts of the contract only ours has.
 */
import type { Connection } from '../connection.js';

export const PROTOCOLS = ['contract', 'raw', 'socketio'] as const;
export type ProtocolName = (typeof PROTOCOLS)[number];

/** How a received text frame counts in a broadcast: a copy of a published message, an ack, or something unexpected. */
export type FrameKind = 'message' | 'ack' | 'other';

export interface Protocol {
  readonly name: ProtocolName;
  /**
   * What follows the upgrade before the scenario speaks: our welcome (resolved with it, parsed);
   * Engine.IO's open and Socket.IO's connect (null).
   */
  opened(conn: Connection, timeoutMs: number): Promise<Record<string, unknown> | null>;
  /** The frame asking for an echo of `text`; the echo is the same frame back. */
  echoFrame(text: string): string;
  /** Ends an echo client: our server says goodbye and closes with 1000; with the others the client closes. */
  endEcho(conn: Connection, timeoutMs: number): Promise<void>;
  /** Subscribes to `channel` and waits for the server to confirm it, where the protocol has a confirmation. */
  subscribe(conn: Connection, channel: string, timeoutMs: number): Promise<void>;
  /** The frame publishing `message` (a JSON object's text) on `channel`. */
  publishFrame(channel: string, message: string): string;
  /** A received text frame as a published message (its channel, '' when the protocol names none), or null when it is not one. */
  message(frame: string): { channel: string; message: unknown } | null;
  /** The kind of a received text frame, from bytes `start` to `end` of `data`. */
  classify(data: Buffer, start: number, end: number): FrameKind;
}

/** Whether bytes `from` to `to` of `data` begin with `prefix`. */
export function startsWith(data: Buffer, from: number, to: number, prefix: Buffer): boolean {
  if (to - from < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[from + i] !== prefix[i]) return false;
  return true;
}

/** `text` parsed as JSON, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
