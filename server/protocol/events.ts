/**
 * Server events: typed values in, JSON text out. Pure: it never sends.
 *
 * Acks (`subscribed`, `unsubscribed`, `published`, `pong`, `slow`) carry `id` only when the request had
 * one; an `error` always carries `id` (null when the request had none), as in protocol.md.
 */
import type { ErrorCode, RequestId } from './frames.js';

/** Why the server ends a connection it closes itself. */
export type GoodbyeReason = 'shutdown' | 'slow_consumer' | 'server_error' | 'token_expired' | 'closed';

function withId(body: string, id: RequestId): string {
  return id === null ? `{${body}}` : `{${body},"id":${JSON.stringify(id)}}`;
}

/** The first frame of every `/pubsub` connection. */
export function welcome(connection: string, user: string | null, session: string): string {
  return JSON.stringify({ event: 'welcome', connection, user, session });
}

/** Ack of a subscribe; `recovered` when it asked to recover from a position (`since`). */
export function subscribed(channel: string, id: RequestId, recovered?: boolean): string {
  const tail = recovered === undefined ? '' : `,"recovered":${recovered}`;
  return withId(`"event":"subscribed","channel":${JSON.stringify(channel)}${tail}`, id);
}

/** Ack of an unsubscribe. */
export function unsubscribed(channel: string, id: RequestId): string {
  return withId(`"event":"unsubscribed","channel":${JSON.stringify(channel)}`, id);
}

/** Ack of a publish; only sent when the publish carried an id. */
export function published(channel: string, id: RequestId): string {
  return withId(`"event":"published","channel":${JSON.stringify(channel)}`, id);
}

/**
 * A message on a channel. `messageJson` must already be JSON text: it is spliced in as is, so a
 * message is encoded once per publish, not once per subscriber.
 */
export function message(channel: string, messageJson: string, cached = false, position?: { offset: number; epoch: string }): string {
  const head = `{"event":"message","channel":${JSON.stringify(channel)},"message":${messageJson}`;
  const at = position ? `,"offset":${position.offset},"epoch":${JSON.stringify(position.epoch)}` : '';
  return cached ? `${head}${at},"cached":true}` : `${head}${at}}`;
}

/** The answer to a history request: kept messages, oldest first; `truncated` when older ones were left out for its size. */
export function history(channel: string, messages: { offset: number; messageJson: string }[], epoch: string, id: RequestId, truncated = false): string {
  const list = messages.map((m) => `{"offset":${m.offset},"message":${m.messageJson}}`).join(',');
  const tail = truncated ? ',"truncated":true' : '';
  return withId(`"event":"history","channel":${JSON.stringify(channel)},"messages":[${list}],"epoch":${JSON.stringify(epoch)}${tail}`, id);
}

/** The bytes a kept message takes in a `history` answer (the frame around it aside). */
export function historyEntryBytes(m: { offset: number; messageJson: string }): number {
  return Buffer.byteLength(m.messageJson) + 32;
}

/** Ack of a refresh: the new token is in force. */
export function refreshed(id: RequestId): string {
  return withId('"event":"refreshed"', id);
}

/** The result of an rpc call: `resultJson` must be JSON text. */
export function result(resultJson: string, id: RequestId): string {
  return withId(`"event":"result","result":${resultJson}`, id);
}

/** Who is subscribed to a channel, on every instance: an answer to a presence request. */
export interface Member {
  connection: string;
  user: string | null;
  session: string;
}

/** The answer to a presence request. */
export function presence(channel: string, members: Member[], id: RequestId, truncated = false): string {
  const tail = truncated ? ',"truncated":true' : '';
  return withId(`"event":"presence","channel":${JSON.stringify(channel)},"members":${JSON.stringify(members)}${tail}`, id);
}

/** A member came (`join`) or went (`leave`), for the subscribers that asked (join_leave). */
export function joinLeave(kind: 'join' | 'leave', channel: string, member: Member): string {
  return JSON.stringify({ event: kind, channel, member });
}

/** Answer to a ping. */
export function pong(id: RequestId): string {
  return withId('"event":"pong"', id);
}

/** Answer to a slow request, once its IO is done; `ms` is what was asked for. */
export function slowDone(ms: number, id: RequestId): string {
  return withId(`"event":"slow","ms":${ms}`, id);
}

/** An error frame; it never costs the client its connection or its subscriptions. */
export function error(code: ErrorCode, text: string, id: RequestId): string {
  return JSON.stringify({ event: 'error', code, message: text, id });
}

/** Sent before every close the server starts. */
export function goodbye(reason: GoodbyeReason): string {
  return `{"event":"goodbye","reason":"${reason}"}`;
}

/** `/echo`: the first frame. */
export const ECHO_WELCOME = '{"event":"welcome"}';

/** `/echo`: the frame after the last echo. */
export const ECHO_GOODBYE = '{"event":"goodbye"}';
