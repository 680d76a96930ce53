#!/usr/bin/env node
/** `node dist/server/baseline/cli.js [flags]`: the ws comparison server. */
import { commandLine } from '../command-line.js';
import { wsHelpers } from '../engine.js';
import { createBaselineServer, DEFAULT_BASELINE_OPTIONS } from './index.js';

async function main(): Promise<void> {
  const d = DEFAULT_BASELINE_OPTIONS;
  const args = await commandLine('baseline-server', '$0 [flags]\n\nThe ws-based comparison server: /pubsub (subscribe, unsubscribe, publish, ping, slow) and /echo.')
    .option('port', { type: 'number', default: d.port, describe: 'TCP port; 0 picks a free one' })
    .option('host', { type: 'string', default: d.host, describe: 'address to listen on' })
    .option('serial', { type: 'boolean', default: d.serial, describe: "answer a connection's slow requests one after another (the seeds' blocking server)" })
    .option('max-payload', { type: 'number', default: d.maxPayload, describe: 'largest frame, bytes' })
    .option('max-backpressure', { type: 'number', default: d.maxBackpressure, describe: 'bytes queued for a socket past which published messages to it are dropped' })
    .check((argv) => {
      for (const flag of ['port', 'max-payload', 'max-backpressure'] as const) {
        const value = argv[flag];
        if (!Number.isInteger(value) || value < 0 || (flag === 'port' && value > 65_535)) {
          throw new Error(`--${flag} must be a whole number${flag === 'port' ? ' from 0 to 65535' : ''} (got ${process.argv[process.argv.indexOf(`--${flag}`) + 1]})`);
        }
      }
      return true;
    })
    .parseAsync();
  const server = createBaselineServer({
    port: args.port,
    host: args.host,
    serial: args.serial,
    maxPayload: args.maxPayload,
    maxBackpressure: args.maxBackpressure,
  });
  const { port } = await server.listen().catch((err: Error) => {
    console.error(`baseline-server: cannot listen on ${args.host}:${args.port} (--host, --port): ${err.message}`);
    process.exit(1);
  });
  const host = args.host;
  const local = host === '0.0.0.0' ? ` (every interface; from this machine ws://127.0.0.1:${port})` : '';
  console.log(`engine: ${wsHelpers().description}${args.serial ? ', serial slow requests' : ''}`);
  // The handlers go in before the listening line: whoever reads that line may signal at once.
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  console.log(`listening: ws://${host}:${port}/pubsub  ws://${host}:${port}/echo  http://${host}:${port}/stats${local}`);
}

void main();
