/**
 * Presence in this process only (no Redis): exact and immediate. Join/leave events are delivered in
 * the next microtask, in order.
 */
import type { Member, PresenceHandler, PresenceStore } from './types.js';

export class LocalPresence implements PresenceStore {
  readonly kind = 'local';
  private readonly channels = new Map<string, Map<string, Member>>();
  private handler: PresenceHandler = () => {};

  onEvent(handler: PresenceHandler): void {
    this.handler = handler;
  }

  async start(): Promise<void> {}

  join(channel: string, member: Member): void {
    let members = this.channels.get(channel);
    if (!members) this.channels.set(channel, (members = new Map()));
    members.set(member.connection, member);
    queueMicrotask(() => this.handler('join', channel, member));
  }

  leave(channel: string, member: Member): void {
    const members = this.channels.get(channel);
    if (!members?.delete(member.connection)) return;
    if (members.size === 0) this.channels.delete(channel);
    queueMicrotask(() => this.handler('leave', channel, member));
  }

  async members(channel: string): Promise<Member[]> {
    return [...(this.channels.get(channel)?.values() ?? [])];
  }

  counters(): Record<string, number> {
    return {};
  }

  async close(): Promise<void> {
    this.channels.clear();
  }
}
