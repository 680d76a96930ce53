#!/usr/bin/env node
/**
 * `uws-pubsub-bench <command> [flags]`, the package's one entry point beside its direct ones
 * (`pubsub-server`, `pubsub-swarm`, `pubsub-baseline`): runs the command's own program with the flags
 * that follow it. Without a command (or with flags first) it is the server.
 */
const COMMANDS: Record<string, string> = {
  server: '../server/cli.js',
  swarm: '../clients/cli.js',
  baseline: '../server/baseline/cli.js',
};

const [command] = process.argv.slice(2);
if (command === '--help' || command === '-h' || command === 'help') {
  console.log(`uws-pubsub-bench <command> [flags]

  server     the uWebSockets.js pub/sub server (the default when the first argument is a flag)
  swarm      the client swarm: many WebSocket clients against a server, measured
  baseline   the ws-based comparison server

Each command has its own --help: uws-pubsub-bench swarm --help`);
} else if (command !== undefined && !command.startsWith('-') && !(command in COMMANDS)) {
  console.error(`uws-pubsub-bench: unknown command ${JSON.stringify(command)}: server, swarm or baseline (--help)`);
  process.exit(2);
} else {
  const chosen = command !== undefined && command in COMMANDS ? command : 'server';
  // The program reads its flags from process.argv after the script: drop the command word.
  if (chosen === command) process.argv.splice(2, 1);
  await import(COMMANDS[chosen]);
}
