/**
 * A swarm across machines, coordinated through Redis (no protocol of our own): each load machine runs
 * `swarm agent --coordinator redis://...` (clients/agents/agent.ts), and a run with `--agents N` takes N of the
 * agents waiting, gives each its share of the workers, and talks to those workers through Redis lists as
 * it talks to forked ones through IPC (a RemoteWorker is a WorkerLink). Every list and key is under
 * `--coordinator-key` (default `swarm`):
 *
 *   <key>:agents                 agents waiting for a run: {name, sourceAddresses}, pushed by each agent
 *   <key>:agent:<name>:alive     set by the agent every second, expiring in 3 s: a missing key is a lost agent
 *   <key>:agent:<name>:inbox     run -> agent: {run, worker, to} (a message for a worker; `start` forks it),
 *                                {run, worker, disconnect: true}, {run, worker, kill: true}
 *   <key>:run:<run>:from         agents -> run: {worker, message} (the worker's report or ready), {worker, exit}
 *
 * Lists expire an hour after their last message, so nothing a dead agent or run leaves behind stays.
 * Guarantees: messages of one worker arrive in order (one list each way); a worker an agent loses, or
 * whose agent stops refreshing its key, is reported gone within about 3 s, and its clients counted as
 * failed, so the run still ends by itself. Clocks: agents time their own clients, and the start and
 * barrier moments are epoch ms, so the machines' clocks must agree (NTP) to well under the ramp spacing.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { FromWorker, ToWorker } from '../swarm/ipc.js';
import type { WorkerLink } from '../swarm/worker-link.js';
import { redactUrl } from '../../server/log.js';

/** An agent as it announces itself. */
export interface AgentInfo {
  name: string;
  /** Its own local addresses to connect from; empty: the kernel picks. */
  sourceAddresses: string[];
}

/** What goes into an agent's inbox. */
export type AgentCommand =
  | { run: string; worker: number; from: string; to: ToWorker }
  | { run: string; worker: number; disconnect: true }
  | { run: string; worker: number; kill: true };

/** What an agent sends back about one worker. */
export type AgentReport = { worker: number; message: FromWorker } | { worker: number; exit: string };

export const keys = (key: string) => ({
  agents: `${key}:agents`,
  alive: (name: string) => `${key}:agent:${name}:alive`,
  inbox: (name: string) => `${key}:agent:${name}:inbox`,
  from: (run: string) => `${key}:run:${run}:from`,
});

/**
 * Two connections to the coordinator's Redis: one for commands, one for BRPOP/BLPOP (a blocked
 * connection can send nothing else). Throws naming the URL when Redis cannot be reached.
 */
export async function connectPair(url: string): Promise<[Redis, Redis]> {
  // No retries while connecting, so a wrong URL fails at once with its own error; later, after a Redis
  // restart, they reconnect. Errors are kept for the message, not left unhandled.
  const options = { lazyConnect: true, maxRetriesPerRequest: 2, retryStrategy: () => null };
  const pair = [new Redis(url, options), new Redis(url, options)] as [Redis, Redis];
  let last: Error | null = null;
  for (const redis of pair) redis.on('error', (err: Error) => (last = err));
  try {
    await Promise.all(pair.map((redis) => redis.connect()));
  } catch (err) {
    for (const redis of pair) redis.disconnect();
    throw new Error(`--coordinator ${redactUrl(url)}: ${(last ?? (err as Error)).message}`);
  }
  for (const redis of pair) redis.options.retryStrategy = (times: number) => Math.min(times * 200, 2000);
  return pair;
}

/** Seconds an agent's alive key lives; it refreshes it every second. */
export const ALIVE_TTL_S = 3;
/** Seconds a run's list and an agent's inbox live after their last message: longer than any run's silence. */
export const LEFTOVER_TTL_S = 3600;

class RemoteWorker implements WorkerLink {
  readonly pid = null;
  private messageListener: ((message: FromWorker) => void) | null = null;
  private exitListener: ((how: string) => void) | null = null;
  gone = false;

  constructor(
    private readonly coordinator: Coordinator,
    readonly agent: AgentInfo,
    readonly worker: number,
  ) {}

  get where(): string {
    return this.agent.name;
  }

  send(message: ToWorker): void {
    if (!this.gone) this.coordinator.command(this.agent, { run: this.coordinator.run, worker: this.worker, from: this.coordinator.fromKey, to: message });
  }

  onMessage(listener: (message: FromWorker) => void): void {
    this.messageListener = listener;
  }

  onExit(listener: (how: string) => void): void {
    this.exitListener = listener;
  }

  disconnect(): void {
    if (!this.gone) this.coordinator.command(this.agent, { run: this.coordinator.run, worker: this.worker, disconnect: true });
  }

  kill(): void {
    if (!this.gone) this.coordinator.command(this.agent, { run: this.coordinator.run, worker: this.worker, kill: true });
  }

  deliver(report: AgentReport): void {
    if ('message' in report) this.messageListener?.(report.message);
    else this.exited(report.exit);
  }

  exited(how: string): void {
    if (this.gone) return;
    this.gone = true;
    this.exitListener?.(how);
  }
}

export class Coordinator {
  readonly run = randomBytes(6).toString('hex');
  readonly fromKey: string;
  private readonly names: ReturnType<typeof keys>;
  private readonly links = new Map<number, RemoteWorker>();
  private readonly lost = new Set<string>();
  private pumping = true;
  private pump: Promise<void> | null = null;
  private watch: NodeJS.Timeout | null = null;

  private constructor(
    private readonly redis: Redis,
    /** For BRPOP only: a blocked connection can send nothing else. */
    private readonly blocking: Redis,
    key: string,
  ) {
    this.names = keys(key);
    this.fromKey = this.names.from(this.run);
  }

  static async connect(url: string, key: string): Promise<Coordinator> {
    const [redis, blocking] = await connectPair(url);
    return new Coordinator(redis, blocking, key);
  }

  /**
   * Takes `count` waiting agents, the longest-waiting first; throws after `timeoutS` seconds with those
   * that came named (they are put back for the next run).
   */
  async takeAgents(count: number, timeoutS: number): Promise<AgentInfo[]> {
    const taken: AgentInfo[] = [];
    const until = Date.now() + timeoutS * 1000;
    while (taken.length < count) {
      const left = Math.ceil((until - Date.now()) / 1000);
      const popped = left > 0 ? await this.blocking.brpop(this.names.agents, Math.min(left, 1)) : null;
      if (popped) {
        const agent = JSON.parse(popped[1]) as AgentInfo;
        // An agent that died while waiting left its announcement behind; its alive key tells.
        if (await this.redis.exists(this.names.alive(agent.name))) taken.push(agent);
      } else if (Date.now() >= until) {
        if (taken.length > 0) await this.redis.rpush(this.names.agents, ...taken.map((a) => JSON.stringify(a)));
        throw new Error(`only ${taken.length} of ${count} agents came within ${timeoutS} s${taken.length ? ` (${taken.map((a) => a.name).join(', ')})` : ''}; start them with: swarm agent --coordinator <redis url>`);
      }
    }
    return taken;
  }

  /** The link to worker `worker`, run by `agent`. */
  link(agent: AgentInfo, worker: number): WorkerLink {
    const link = new RemoteWorker(this, agent, worker);
    this.links.set(worker, link);
    this.pump ??= this.runPump();
    this.watch ??= setInterval(() => void this.checkAlive(), 1000);
    return link;
  }

  /** Agents that stopped refreshing their alive key during the run. */
  get lostAgents(): string[] {
    return [...this.lost];
  }

  command(agent: AgentInfo, command: AgentCommand): void {
    const inbox = this.names.inbox(agent.name);
    // A command to an agent that has gone would stay in its inbox for good; it expires instead.
    void this.redis.multi().rpush(inbox, JSON.stringify(command)).expire(inbox, LEFTOVER_TTL_S).exec().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.pumping = false;
    if (this.watch) clearInterval(this.watch);
    await this.pump;
    await this.redis.del(this.fromKey).catch(() => undefined);
    this.redis.disconnect();
    this.blocking.disconnect();
  }

  private async runPump(): Promise<void> {
    while (this.pumping) {
      let popped: [string, string] | null = null;
      try {
        popped = await this.blocking.brpop(this.fromKey, 1);
      } catch {
        // Redis gone: the liveness check finds the agents lost, or the run's deadline ends it.
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      if (!popped) continue;
      const report = JSON.parse(popped[1]) as AgentReport;
      this.links.get(report.worker)?.deliver(report);
    }
  }

  private async checkAlive(): Promise<void> {
    const agents = new Map<string, RemoteWorker[]>();
    for (const link of this.links.values()) if (!link.gone) agents.set(link.agent.name, [...(agents.get(link.agent.name) ?? []), link]);
    for (const [name, links] of agents) {
      const alive = await this.redis.exists(this.names.alive(name)).catch(() => 0);
      if (alive) continue;
      this.lost.add(name);
      for (const link of links) link.exited(`agent ${name} stopped reporting`);
    }
  }
}
