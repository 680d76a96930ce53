/**
 * `node dist/clients/fuzz/cli.js --port P [flags]`: the fuzzer as a process of its own (bench/fuzz.ts
 * runs it so, apart from the clients whose latency it measures). Progress goes to stderr; the report
 * is the last line of stdout, as JSON. The expectations are those of this project's server
 * (docs/protocol.md), on the uWS build its /stats names: against another server, mismatches say where
 * it differs.
 */
import { hideBin } from 'yargs/helpers';
import { commandLine, numeric, requireIntegers } from '../../server/command-line.js';
import { readUwsTraits, runFuzz } from './runner.js';

const args = await commandLine('fuzz', '$0 --port P [flags]\n\nSeeded hostile input at the JSON, WebSocket-frame and HTTP levels; every answer checked.', hideBin(process.argv))
  .option('port', { coerce: numeric, requiresArg: true, demandOption: true, describe: 'port of the server on 127.0.0.1' })
  .option('inputs', { coerce: numeric, requiresArg: true, default: 100_000, describe: 'cases to run' })
  .option('seed', { coerce: numeric, requiresArg: true, default: 1, describe: 'seed of the inputs (the same seed replays a run)' })
  .option('concurrency', { coerce: numeric, requiresArg: true, default: 16, describe: 'cases in flight at once' })
  .option('max-payload', { coerce: numeric, requiresArg: true, default: 65_536, describe: "the server's --max-payload" })
  .option('max-json-depth', { coerce: numeric, requiresArg: true, default: 64, describe: "the server's --max-json-depth" })
  .option('max-header-size', { coerce: numeric, requiresArg: true, default: 8192, describe: "the server's --max-header-size" })
  .option('publish-key', { type: 'string', demandOption: true, describe: "the server's --publish-key" })
  .option('source-addresses', { type: 'string', default: '127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5', describe: 'local addresses for the raw connections, in turn (comma-separated; empty: the default one)' })
  .parseAsync();

requireIntegers('fuzz', [['--inputs', args.inputs, 1], ['--concurrency', args.concurrency, 1], ['--port', args.port, 1]]);
// Ctrl-C (or a SIGINT from bench/fuzz.ts) stops issuing cases; the report of what ran still comes out.
// Later signals are ignored: the cases in flight end within their own time limits.
const stop = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => stop.abort());
const report = await runFuzz({
  signal: stop.signal,
  port: args.port as number,
  inputs: args.inputs as number,
  seed: args.seed as number,
  concurrency: args.concurrency as number,
  limits: {
    maxPayload: args.maxPayload as number,
    maxJsonDepth: args.maxJsonDepth as number,
    maxHeaderSize: args.maxHeaderSize as number,
    publishKey: args.publishKey,
    uws: await readUwsTraits(args.port as number),
  },
  sourceAddresses: args.sourceAddresses.split(',').filter(Boolean),
  onProgress: (done, total) => {
    if (done % 10_000 === 0) process.stderr.write(`fuzz: ${done}/${total} inputs\n`);
  },
});
console.log(JSON.stringify(report));
