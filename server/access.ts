/**
 * The one access rule. Every way a connection reads a channel (subscribe, with `since`, `join_leave`
 * and the cached message that follow it; the `history` action; `presence`) asks {@link AccessRule.read},
 * and every client publish asks {@link AccessRule.publish}. Each applies, in order: the channel's
 * built-in rule (`user:` and `session:` channels are their owner's; clients publish on broadcast
 * channels only, and not with `--no-client-publish`), the token's grants, which add to the built-in
 * rule and never take away, and then the application's `canSubscribe` / `canPublish` hook, which can
 * only refuse what the rules allow. A server-side subscribe (a hook's `conn.subscribe`) is the
 * application's own decision and does not ask.
 */
import { callHook, type HookConnection, type HookName, type Hooks } from './hooks.js';
import { granted, type TokenIdentity } from './identity.js';
import { mayClientPublish, maySubscribe, type ChannelRef } from './protocol/index.js';

/** Who asks: the connection's identity and its token's grants (null without a token). */
export interface Accessor {
  readonly user: string | null;
  readonly session: string;
  readonly grants: Pick<TokenIdentity, 'channels' | 'publish'> | null;
}

/** How a connection reads a channel; the refusal names it. */
export type ReadUse = 'subscribe' | 'history' | 'presence';

/** The rule's answer: allowed, refused (`forbidden`), or a hook that failed (`hook_failed`). */
export type Verdict =
  | { allowed: true }
  | { allowed: false; code: 'forbidden'; message: string }
  | { allowed: false; code: 'hook_failed'; hook: HookName; error: Error; timedOut: boolean };

const ALLOWED: Verdict = { allowed: true };

/** What the refusal of a read by the built-in rule says, by use. */
const READ_REFUSED: Record<ReadUse, (channel: string) => string> = {
  subscribe: (channel) => `this connection may not subscribe to ${channel}`,
  history: (channel) => `this connection may not read ${channel}`,
  presence: (channel) => `this connection may not read ${channel}`,
};

export class AccessRule {
  constructor(
    private readonly hooks: Pick<Hooks, 'canSubscribe' | 'canPublish'>,
    private readonly clientPublish: boolean,
    private readonly hookTimeout: number,
  ) {}

  /** Whether a hook takes part in reads (then {@link read} answers with a promise). */
  get readHook(): boolean {
    return this.hooks.canSubscribe !== undefined;
  }

  /** Whether a hook takes part in publishes (then {@link publish} answers with a promise). */
  get publishHook(): boolean {
    return this.hooks.canPublish !== undefined;
  }

  /**
   * May `who` read `channel`? At once when the rules refuse or no hook takes part; else once
   * `canSubscribe` has answered (`facade` is what it is shown of the connection).
   */
  read(who: Accessor, channel: ChannelRef, use: ReadUse, facade: () => HookConnection): Verdict | Promise<Verdict> {
    if (!this.mayRead(who, channel)) return { allowed: false, code: 'forbidden', message: READ_REFUSED[use](channel.name) };
    const hook = this.hooks.canSubscribe;
    if (!hook) return ALLOWED;
    return this.ask('canSubscribe', () => hook(facade(), channel.name), channel.name);
  }

  /** May `who` publish `message` on `channel`? As {@link read}, with `canPublish`. */
  publish(who: Accessor, channel: ChannelRef, message: () => unknown, facade: () => HookConnection): Verdict | Promise<Verdict> {
    if (!this.mayPublish(who, channel)) {
      const why = channel.facility.kind === 'broadcast' ? 'clients may not publish (--no-client-publish)' : `${channel.facility.kind} channels are published by the server side only`;
      return { allowed: false, code: 'forbidden', message: why };
    }
    const hook = this.hooks.canPublish;
    if (!hook) return ALLOWED;
    return this.ask('canPublish', () => hook(facade(), channel.name, message()), channel.name);
  }

  /** The built-in rule and the grants for a read, without the hook. */
  mayRead(who: Accessor, channel: ChannelRef): boolean {
    return maySubscribe(channel.facility, who) || (who.grants !== null && granted(who.grants.channels, channel.name));
  }

  /** The built-in rule and the grants for a publish, without the hook. */
  mayPublish(who: Accessor, channel: ChannelRef): boolean {
    return mayClientPublish(channel.facility, this.clientPublish) || (who.grants !== null && granted(who.grants.publish, channel.name));
  }

  private async ask(hook: 'canSubscribe' | 'canPublish', call: () => boolean | Promise<boolean>, channel: string): Promise<Verdict> {
    const outcome = await callHook(call, this.hookTimeout);
    if (!outcome.ok) return { allowed: false, code: 'hook_failed', hook, error: outcome.error, timedOut: outcome.timedOut };
    if (outcome.value === false) return { allowed: false, code: 'forbidden', message: `the ${hook} hook refused ${channel}` };
    return ALLOWED;
  }
}
