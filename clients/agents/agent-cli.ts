/**
 * `swarm agent --coordinator redis://host:6379 [--name N] [--source-addresses A,B]`: serves runs started
 * elsewhere with `swarm --agents N --coordinator redis://host:6379` (clients/agents/agent.ts) until Ctrl-C.
 */
import { hostname } from 'node:os';
import { commandLine } from '../../server/command-line.js';
import { Agent } from './agent.js';
import { DEFAULT_SWARM_OPTIONS as d } from '../swarm/options.js';

export async function runAgent(argv: string[]): Promise<void> {
  const args = await commandLine('swarm agent', '$0 --coordinator redis://host:6379 [flags]\n\nRuns the workers of swarm runs started elsewhere with --agents N --coordinator <the same Redis>,\neach run\'s share of its clients from this machine. Serves one run after another until Ctrl-C.')
    .option('coordinator', { type: 'string', demandOption: true, describe: 'Redis URL shared with the run (redis://host:6379)' })
    .option('coordinator-key', { type: 'string', default: d.coordinatorKey, describe: 'prefix of the Redis keys; the run must use the same' })
    .option('name', { type: 'string', default: `${hostname()}-${process.pid}`, describe: 'how runs and summaries name this agent; unique per Redis' })
    .option('source-addresses', { type: 'string', default: '', describe: "this machine's local addresses to connect from (comma-separated); default: the kernel picks" })
    .check((a) => {
      if (!/^rediss?:\/\//.test(a.coordinator)) throw new Error(`--coordinator must be a redis:// URL (got ${JSON.stringify(a.coordinator)})`);
      if (!/^[\w.:-]{1,100}$/.test(String(a.coordinatorKey))) throw new Error(`--coordinator-key must be 1 to 100 characters of A-Z a-z 0-9 _ . : - (got ${JSON.stringify(a.coordinatorKey)})`);
      if (!/^[\w.-]{1,100}$/.test(String(a.name))) throw new Error(`--name must be 1 to 100 characters of A-Z a-z 0-9 _ . - (got ${JSON.stringify(a.name)})`);
      return true;
    })
    .parse(argv);
  const sourceAddresses = args.sourceAddresses.split(',').map((a) => a.trim()).filter(Boolean);
  let agent: Agent;
  try {
    agent = await Agent.connect(args.coordinator, args.coordinatorKey, { name: args.name, sourceAddresses }, (line) => console.log(line));
  } catch (err) {
    console.error(`swarm agent: ${(err as Error).message}`);
    process.exit(1);
  }
  const stop = (): void => void agent.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await agent.serve();
}
