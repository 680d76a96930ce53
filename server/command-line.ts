/**
 * What every command of the project (server, baseline, swarm, benchmarks) does with its flags: strict
 * parsing, `--help`/`-h`, and a bad flag exiting 2 with a message that names it.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';

/** A yargs parser for `name`, set up as every command here is; add the command's own options to it. */
export function commandLine(name: string, usage: string, argv: string[] = hideBin(process.argv)) {
  return yargs(argv)
    .scriptName(name)
    .usage(usage)
    .strict()
    .help()
    .alias('help', 'h')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((message, err) => usageError(name, err?.message ?? message));
}

/** A bad flag's end, the same for every command: `<name>: <message>`, the pointer to --help, exit 2. */
export function usageError(name: string, message: string): never {
  console.error(`${name}: ${message}\nRun with --help for the flags.`);
  process.exit(2);
}

export { numeric } from './option-spec.js';

/**
 * Exits 2 with a message naming the flag unless each value is an integer of at least its minimum, as
 * the commands without a validator of their own (the fuzzer, make fuzz) check their numeric flags.
 */
export function requireIntegers(name: string, checks: readonly (readonly [flag: string, value: unknown, min: number])[]): void {
  for (const [flag, value, min] of checks) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      usageError(name, `${flag} must be an integer of at least ${min} (got ${JSON.stringify(value)})`);
    }
  }
}
