/**
 * Channel names, their facilities and who may use them (protocol.md, "Channels").
 * Pure: no sockets, no state.
 */

/** Longest channel name, in characters. */
export const MAX_CHANNEL_LENGTH = 200;

const CHANNEL_GRAMMAR = /^[A-Za-z0-9_\-.:@]{1,200}$/;

/**
 * What a channel name means.
 * - `broadcast`: any name that does not start with `user:` or `session:`.
 * - `user`: `user:<name>:<facility>`, for the connections authenticated as `<name>`.
 * - `session`: `session:<sid>:<facility>`, for the connections of session `<sid>`.
 */
export type Facility =
  | { kind: 'broadcast' }
  | { kind: 'user'; user: string; facility: string }
  | { kind: 'session'; session: string; facility: string };

/** Who is on the other end of a connection. `user` is null for anonymous clients. */
export interface Identity {
  user: string | null;
  session: string;
}

/**
 * Parses a channel name. Returns null when the name is outside the grammar (1 to 200 characters of
 * `A-Z a-z 0-9 _ - . : @`) or when it starts with a reserved prefix (`user:`, `session:`) without both
 * an owner and a facility, e.g. `user:john` or `session::chat`.
 */
export function parseChannel(name: string): Facility | null {
  if (!CHANNEL_GRAMMAR.test(name)) return null;
  if (name.startsWith('user:')) {
    const owned = splitOwned(name, 5);
    return owned && { kind: 'user', user: owned.owner, facility: owned.facility };
  }
  if (name.startsWith('session:')) {
    const owned = splitOwned(name, 8);
    return owned && { kind: 'session', session: owned.owner, facility: owned.facility };
  }
  return { kind: 'broadcast' };
}

function splitOwned(name: string, prefixLength: number): { owner: string; facility: string } | null {
  const colon = name.indexOf(':', prefixLength);
  if (colon <= prefixLength || colon === name.length - 1) return null;
  return { owner: name.slice(prefixLength, colon), facility: name.slice(colon + 1) };
}

/** Whether a connection with `identity` may subscribe to a channel of this facility. */
export function maySubscribe(facility: Facility, identity: Identity): boolean {
  switch (facility.kind) {
    case 'broadcast':
      return true;
    case 'user':
      return identity.user !== null && identity.user === facility.user;
    case 'session':
      return identity.session === facility.session;
  }
}

/**
 * Whether a WebSocket client may publish on a channel of this facility. `user:` and `session:` channels
 * are written by the server side only (HTTP `/publish`, Redis); broadcast channels by clients unless the
 * server was started with `--no-client-publish`.
 */
export function mayClientPublish(facility: Facility, clientPublish: boolean): boolean {
  return facility.kind === 'broadcast' && clientPublish;
}

/**
 * The Redis pub/sub channel (and cache key) of a channel: `broadcast:<name>` for broadcast channels, the
 * name itself for `user:` and `session:` channels; with a prefix, `<prefix>:` in front.
 */
export function redisName(channel: string, facility: Facility, prefix = ''): string {
  return prefixed(prefix, facility.kind === 'broadcast' ? `broadcast:${channel}` : channel);
}

/** A Redis name under `--prefix`: `<prefix>:<name>`, or the name itself without one. */
export function prefixed(prefix: string, name: string): string {
  return prefix ? `${prefix}:${name}` : name;
}
