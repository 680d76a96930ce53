/**
 * Hooks: the application's code, called by the server at fixed points (realtime-magic's
 * authenticators, on-open handlers, push traps and receivers). Every hook is optional and may be sync
 * or async. A hook that throws or runs past `hookTimeout` is counted in `/stats` `hook_errors` and
 * answered with an error frame for that connection only (or a 500 at the upgrade); it never crashes
 * the server, and an async hook never holds up other connections.
 */

/** A connection as hooks see it. */
export interface HookConnection {
  readonly id: string;
  /** The user its token (or `authenticate`) named; null when anonymous. */
  readonly user: string | null;
  readonly session: string;
  /** Source address. */
  readonly address: string;
  /** Sends it a frame (any JSON value; an object with an `event` field by convention). */
  send(frame: unknown): void;
  /**
   * Subscribes it to a channel from the server side: no permission check (the application decides),
   * and the client gets `{"event":"subscribed","channel":..}` without an id. Throws on a bad name.
   */
  subscribe(channel: string): void;
  /** Unsubscribes it (`unsubscribed`, without an id). */
  unsubscribe(channel: string): void;
  /** Ends it: goodbye (reason `closed`), then close 1000. */
  close(): void;
}

/** What `authenticate` sees of an upgrade request. */
export interface UpgradeRequest {
  /** Path and query, e.g. `/pubsub?room=1`. */
  url: string;
  /** The request's headers, lower-case names. */
  headers: Record<string, string>;
  address: string;
  /** Who the request's token says it is, when tokens are on and it brought a valid one. */
  token: { user: string; session: string | null } | null;
}

/** What `authenticate` may return: who the connection is (`session` absent: a fresh one), or null: anonymous. */
export type HookIdentity = { user: string; session?: string } | null;

/** Throw it from `authenticate` to refuse the upgrade with a status (401 or 403) and a one-line reason. */
export class Refusal extends Error {
  constructor(
    readonly status: 401 | 403,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Throw it from a receiver (`rpc`) or a request hook to answer the client with its message
 * (`rpc_failed`, `hook_failed`). The text of any other exception stays in the log: it may name what
 * the client must not learn (a database's error, a path).
 */
export class ClientError extends Error {}

/**
 * What a client is told of a failed hook or receiver: `what`, and the message of a {@link ClientError}
 * or of the server's own timeout; nothing of any other error.
 */
export function toldClient(what: string, error: Error): string {
  return error instanceof ClientError || error instanceof HookTimeout ? `${what}: ${error.message}` : what;
}

type Maybe<T> = T | Promise<T>;

export interface Hooks {
  /** At the upgrade of `/pubsub`, after the token check: the identity (overrides the token's), null, or throw a {@link Refusal}. */
  authenticate?(request: UpgradeRequest): Maybe<HookIdentity>;
  /** After `welcome`. */
  onOpen?(conn: HookConnection): Maybe<void>;
  /** Every subscribe the built-in rules allow; false refuses it (`forbidden`). */
  canSubscribe?(conn: HookConnection, channel: string): Maybe<boolean>;
  /** Every client publish the built-in rules allow; false refuses it (`forbidden`). */
  canPublish?(conn: HookConnection, channel: string, message: unknown): Maybe<boolean>;
  /**
   * Push traps, called in order on every client publish: each returns the message to go on with
   * (changed or not), or false to drop it. The publisher gets `published` either way when it sent an id.
   */
  onPublish?: ((conn: HookConnection, channel: string, message: unknown) => Maybe<unknown>)[];
  /** Receivers: `{"action":"rpc","payload":{"method":name,"params":..}}` calls `rpc[name](conn, params)`. */
  rpc?: Record<string, (conn: HookConnection, params: unknown) => Maybe<unknown>>;
  /** When a connection has ended (the WebSocket close code). */
  onClose?(conn: HookConnection, code: number): Maybe<void>;
}

/** The names `/stats` counts hook failures under. */
export const HOOK_NAMES = ['authenticate', 'onOpen', 'canSubscribe', 'canPublish', 'onPublish', 'rpc', 'onClose'] as const;
export type HookName = (typeof HOOK_NAMES)[number];

/** How a hook call ended. */
export type HookOutcome<T> = { ok: true; value: T } | { ok: false; error: Error; timedOut: boolean };

/**
 * Calls a hook with a time limit. Never throws: a throw, a rejection or the limit passing becomes
 * `{ ok: false }` (the hook may still finish later; its result is then ignored).
 */
export async function callHook<T>(call: () => Maybe<T>, timeoutMs: number): Promise<HookOutcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const value = await Promise.race([
      Promise.resolve().then(call),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new HookTimeout(`the hook took longer than ${timeoutMs} ms (--hook-timeout)`)), timeoutMs);
      }),
    ]);
    return { ok: true, value };
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    return { ok: false, error, timedOut: error instanceof HookTimeout };
  } finally {
    clearTimeout(timer);
  }
}

class HookTimeout extends Error {}

/** Whether any hook that handles a client's requests is set (they then run one at a time per connection). */
export function hasRequestHooks(hooks: Hooks): boolean {
  return Boolean(hooks.canSubscribe || hooks.canPublish || hooks.onPublish?.length || hooks.rpc);
}
