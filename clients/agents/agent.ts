/**
 * `swarm agent --coordinator redis://host:6379`: one load machine's part of a swarm across machines
 * (see coordinator.ts). It announces itself, keeps its alive key fresh, and for each run that takes it,
 * forks the workers the run asks for, hands them their messages and sends back everything they report,
 * exactly as they would over IPC to a local engine. With its own `--source-addresses` its workers
 * connect from those (the run's own list is for the coordinator's machine). When its workers of a run
 * are gone it announces itself again, for the next run.
 */
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { ALIVE_TTL_S, connectPair, keys, LEFTOVER_TTL_S, type AgentCommand, type AgentInfo, type AgentReport } from './coordinator.js';
import type { FromWorker, StartMessage } from '../swarm/ipc.js';
import { forkWorker } from '../swarm/worker-link.js';

export class Agent {
  private readonly names: ReturnType<typeof keys>;
  private readonly workers = new Map<string, ChildProcess>();
  private stopping = false;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly blocking: Redis,
    key: string,
    readonly info: AgentInfo,
    private readonly log: (line: string) => void,
  ) {
    this.names = keys(key);
  }

  /** Connects to the coordinator's Redis; throws with the URL when it cannot. */
  static async connect(url: string, key: string, info: AgentInfo, log: (line: string) => void): Promise<Agent> {
    const [redis, blocking] = await connectPair(url);
    return new Agent(redis, blocking, key, info, log);
  }

  /** Serves runs until {@link stop}. */
  async serve(): Promise<void> {
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat(), 1000);
    await this.announce();
    while (!this.stopping) {
      let popped: [string, string] | null = null;
      try {
        popped = await this.blocking.blpop(this.names.inbox(this.info.name), 1);
      } catch (err) {
        if (this.stopping) break;
        this.log(`agent ${this.info.name}: redis: ${(err as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      if (popped) this.handle(JSON.parse(popped[1]) as AgentCommand);
    }
  }

  /** Ends every worker, withdraws the announcement and the alive key, and disconnects. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const child of this.workers.values()) child.kill('SIGKILL');
    await this.redis.lrem(this.names.agents, 0, JSON.stringify(this.info)).catch(() => undefined);
    await this.redis.del(this.names.alive(this.info.name)).catch(() => undefined);
    this.redis.disconnect();
    this.blocking.disconnect();
  }

  private async beat(): Promise<void> {
    await this.redis.set(this.names.alive(this.info.name), '1', 'EX', ALIVE_TTL_S).catch(() => undefined);
  }

  private async announce(): Promise<void> {
    await this.redis.lpush(this.names.agents, JSON.stringify(this.info));
    this.log(`agent ${this.info.name}: waiting for a run`);
  }

  private handle(command: AgentCommand): void {
    const id = `${command.run}/${command.worker}`;
    if ('to' in command) {
      if (command.to.type === 'start') return this.fork(id, command.worker, command.from, command.to);
      const child = this.workers.get(id);
      if (child?.connected) child.send(command.to);
    } else if ('disconnect' in command) {
      const child = this.workers.get(id);
      if (child?.connected) child.disconnect();
    } else {
      this.workers.get(id)?.kill('SIGKILL');
    }
  }

  private fork(id: string, worker: number, from: string, start: StartMessage): void {
    const child = forkWorker();
    this.workers.set(id, child);
    // The run deletes its list when it ends; what comes after (a worker's exit) expires instead of staying.
    const report = (body: AgentReport): void => void this.redis.multi().lpush(from, JSON.stringify(body)).expire(from, LEFTOVER_TTL_S).exec().catch(() => undefined);
    child.on('message', (message: FromWorker) => report({ worker, message }));
    child.once('exit', (code, signal) => {
      report({ worker, exit: String(signal ?? code) });
      this.workers.delete(id);
      const run = id.slice(0, id.indexOf('/'));
      if (![...this.workers.keys()].some((other) => other.startsWith(`${run}/`)) && !this.stopping) {
        this.log(`agent ${this.info.name}: run ${run} done`);
        void this.announce();
      }
    });
    const options = this.info.sourceAddresses.length > 0 ? { ...start.options, sourceAddresses: this.info.sourceAddresses } : start.options;
    child.send({ ...start, options });
    this.log(`agent ${this.info.name}: run ${id.slice(0, id.indexOf('/'))}: worker ${worker} started`);
  }
}
