/**
 * The API of a user scenario: `pubsub-swarm --scenario ./my-flow.ts` runs the module's default export
 * (or its export `scenario`) once per client, in the swarm's workers (and on its agents), with a
 * {@link ScenarioContext}. docs/scenarios.md shows it at work; this file is its reference, and what a
 * TypeScript scenario imports its types from (`uws-pubsub-bench/scenario`).
 *
 * Every wait has a time limit (`--reply-timeout` unless given), and every failure is a thrown error
 * that ends the client and is counted by kind: a timeout, a close, an `expect` that did not match
 * (`expectation`), or the scenario's own code (`script`, also counted by error name). Nothing a
 * scenario throws stops its worker or the other clients.
 */
import type { CloseInfo } from './connection.js';
import type { ProtocolName } from './protocols/types.js';
import type { SwarmOptions } from './options.js';

export type { CloseInfo } from './connection.js';
export type { ProtocolName } from './protocols/types.js';

/** What a user scenario module exports: a function run once per client; the client is done when it resolves. */
export type UserScenario = (ctx: ScenarioContext) => Promise<void>;

/**
 * What `expect` compares the next frame with: its whole text (a string), a pattern over its text, the
 * fields a JSON frame must have with these values (`{ event: 'subscribed', id: 1 }`; nested objects
 * compared whole), or a predicate given the frame parsed as JSON (the text when it is not JSON).
 */
export type FrameMatch = string | RegExp | Readonly<Record<string, unknown>> | ((frame: any) => boolean);

export interface ConnectOptions {
  /**
   * A path (and query) on the run's server (`/pubsub?room=7`), or a whole `ws://` or `wss://` URL.
   * Default: the run's `--url` for this client (client i takes the i-th of several, mod their count).
   */
  url?: string;
  /**
   * What the socket speaks; default the run's `--protocol`. `contract` (this server's, docs/protocol.md):
   * `connect` resolves after the welcome (kept in `welcome`), and every helper is there. `raw`: frames
   * as they are; `publish` sends the message text and `subscribe` does nothing. `socketio`: Engine.IO
   * and Socket.IO's connect are done, pings answered; `subscribe` joins a room (acked), `publish` emits.
   */
  protocol?: ProtocolName;
}

export interface ScenarioContext {
  /** This client's index, 0 to clients-1 across every worker and agent. */
  readonly index: number;
  /** Clients in the run (`--clients`). */
  readonly clients: number;
  /**
   * This client's row of the `--data` CSV file (row `index` mod rows, header line excluded), as
   * header: value; null without `--data`.
   */
  readonly data: Readonly<Record<string, string>> | null;
  /**
   * Epoch ms at which this client's connect was due on the ramp. Schedule what follows from it
   * (`sleepUntil(ctx.slot + 5000)`), not from when the connect finished: connects finish in clumps on
   * a busy host, and sends timed from them would come in the same clumps.
   */
  readonly slot: number;
  /**
   * Which run of the scenario this is for this client: always 0, except with concurrency stages
   * (`--stage 30s:0->100`), where a client runs it again while the target counts it: 0, 1, 2, ...
   */
  readonly iteration: number;
  /** The run's options (`--channel`, `--payload`, `--rounds`, `--delay`, `--reply-timeout`, ...), read-only. */
  readonly options: Readonly<SwarmOptions>;
  /** Opens a WebSocket; its connect time goes to the run's `connect` histogram. */
  connect(options?: ConnectOptions): Promise<ScenarioSocket>;
  /**
   * Runs `step` and records how long it took, under `name` (a letter, then up to 63 of A-Z a-z 0-9
   * _ . : -, at most 100 names a run), when it resolves; a step that throws is not timed and its
   * error goes on. The name `rtt` records into the run's own round-trip histogram.
   */
  time<T>(name: string, step: () => T | Promise<T>): Promise<T>;
  /** Records a duration the scenario measured itself, in milliseconds, under timing `name`. */
  record(name: string, ms: number): void;
  /** Counts `condition` as a pass or a failure of check `name` (1 to 100 characters, no control characters, braces or double quotes; at most 100 names a run) and returns whether it passed. */
  check(condition: unknown, name: string): boolean;
  /** Waits `ms` milliseconds. */
  sleep(ms: number): Promise<void>;
  /** Waits until epoch ms `at` (at once if it has passed). */
  sleepUntil(at: number): Promise<void>;
  /**
   * Waits until every client of the run has reached this point (or ended); all go on at the same
   * moment, returned as epoch ms. Once per client; not with concurrency stages (clients come and go).
   */
  barrier(): Promise<number>;
}

export interface ScenarioSocket {
  /** What it speaks. */
  readonly protocol: ProtocolName;
  /** The server's welcome (contract), parsed; null for the other protocols. */
  readonly welcome: Readonly<Record<string, unknown>> | null;
  /** Sends a text frame: a string as it is, anything else as its JSON. */
  send(frame: unknown): void;
  /** The next text frame; a binary frame, the close, or no frame within `timeoutMs` throws. */
  next(timeoutMs?: number): Promise<string>;
  /** The next frame parsed as JSON; a frame that is not JSON throws a protocol mismatch. */
  nextJson<T = any>(timeoutMs?: number): Promise<T>;
  /**
   * The next frame, which must match `match` (see {@link FrameMatch}); returns it parsed as JSON (its
   * text when it is not JSON). Any other frame throws an `expectation` error naming both.
   */
  expect<T = any>(match: FrameMatch, timeoutMs?: number): Promise<T>;
  /** Starts a clean close (1000) and resolves when the server has closed too. */
  close(timeoutMs?: number): Promise<CloseInfo>;
  /** Resolves when the server closes the socket (its code and reason). */
  closed(timeoutMs?: number): Promise<CloseInfo>;
  /** Subscribes and waits for the ack (contract, socketio); `extra` goes into the contract's payload (`{ join_leave: true }`). */
  subscribe(channel: string, extra?: Readonly<Record<string, unknown>>): Promise<void>;
  /** Unsubscribes and waits for the ack (contract only). */
  unsubscribe(channel: string): Promise<void>;
  /** Publishes `message` (any JSON value) on `channel`; in the contract with an id, resolving on the `published` ack. */
  publish(channel: string, message: unknown): Promise<void>;
  /** Calls the server's receiver `method` (contract, version 2) and resolves with its result; an error event throws. */
  rpc<T = unknown>(method: string, params?: unknown): Promise<T>;
  /** Sends `{action, payload, id}` with a fresh id and resolves with the reply carrying that id; an error event throws (contract only). */
  request(action: string, payload?: unknown): Promise<Record<string, unknown>>;
  /** The next published message that reaches this socket (contract: a `message` event), as channel and message. */
  message<T = unknown>(timeoutMs?: number): Promise<{ channel: string; message: T }>;
}

/** The kinds an error of a client is counted under (the summary's errors line; see metrics.ts). */
export type { ErrorKind } from './metrics.js';
