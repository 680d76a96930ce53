/**
 * One declaration per option, from which a program derives everything else about it: its type, its
 * default, its command-line flag (the kebab-case of its name), its yargs definition and `--help` line,
 * its validation and the messages that name it as the caller wrote it, and the mapping from parsed
 * flags back to options. The server (server/options.ts) and the swarm (clients/swarm/options.ts) each declare
 * their options this way; nothing else spells a flag of theirs.
 */
import { redactUrl } from './redact.js';

/**
 * A `coerce` for numeric flags: a number stays a number, anything else stays as text so the validator can
 * quote what was given; a flag given twice counts with its last value.
 */
export const numeric = (value: unknown): unknown => {
  if (Array.isArray(value)) return numeric(value.at(-1));
  return typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)) ? Number(value) : value;
};


interface Common<T> {
  readonly default: T;
  /** The `--help` line (yargs adds the default). */
  readonly help: string;
  /** Never quoted back in a message: what is wrong is said without the value. */
  readonly secret?: boolean;
  /** A URL that may carry a password: quoted back with the password hidden (redact.ts). */
  readonly url?: boolean;
  /**
   * A rule of the value beyond its kind and bounds: the predicate of the message when it is broken
   * (`must be a redis:// or rediss:// URL`), or undefined.
   */
  rule?(value: T): string | undefined;
  /**
   * A rule between this option and others, checked after every value is: the whole message when broken
   * (`--prefix needs --redis or --redis-cluster`), naming options with `name`; or undefined.
   */
  relation?(options: Record<string, unknown>, name: (key: string) => string): string | undefined;
}

/** A whole number in [min, max]; `nullable` ones have no default on the command line. */
export interface IntegerSpec<T extends number | null = number> extends Common<T> {
  readonly kind: 'integer';
  readonly min: number;
  readonly max: number;
}
/** A finite number; `says` is the predicate of the message (`must be seconds from 0 to 3600`). */
export interface NumberSpec extends Common<number> {
  readonly kind: 'number';
  readonly min: number;
  readonly max: number;
  /** Whether `min` itself is refused (a rate above 0). */
  readonly aboveMin?: boolean;
  readonly says: string;
}
/** Text; `nonEmpty` refuses ''; a null default makes the option optional. */
export interface TextSpec<T extends string | null = string> extends Common<T> {
  readonly kind: 'text';
  readonly nonEmpty: boolean;
}
export interface SwitchSpec extends Common<boolean> {
  readonly kind: 'switch';
}
export interface ChoiceSpec<T extends string = string> extends Common<T> {
  readonly kind: 'choice';
  readonly choices: readonly T[];
}
/** A list, given on the command line comma-separated. */
export interface ListSpec extends Common<string[]> {
  readonly kind: 'list';
  /** The predicate of the message when an item is refused. */
  readonly says: string;
  readonly item: (value: string) => boolean;
}

export type OptionSpec = IntegerSpec<number> | IntegerSpec<number | null> | NumberSpec | TextSpec<string> | TextSpec<string | null> | SwitchSpec | ChoiceSpec | ListSpec;
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** The options a spec declares, each with the type of its default (JSDoc of the spec's entries carries over). */
export type OptionsOf<S extends OptionSpecs> = { -readonly [K in keyof S]: S[K]['default'] };

type Rest<T> = Omit<Common<T>, 'default' | 'help'>;

export const integer = (fallback: number, min: number, max: number, help: string, rest: Rest<number> = {}): IntegerSpec<number> =>
  ({ kind: 'integer', default: fallback, min, max, help, ...rest });
export const optionalInteger = (min: number, max: number, help: string, rest: Rest<number | null> = {}): IntegerSpec<number | null> =>
  ({ kind: 'integer', default: null, min, max, help, ...rest });
export const decimal = (fallback: number, min: number, max: number, says: string, help: string, rest: Rest<number> & { aboveMin?: boolean } = {}): NumberSpec =>
  ({ kind: 'number', default: fallback, min, max, says, help, ...rest });
export const text = (fallback: string, help: string, rest: Rest<string> & { nonEmpty?: boolean } = {}): TextSpec<string> =>
  ({ kind: 'text', nonEmpty: false, default: fallback, help, ...rest });
export const optionalText = (help: string, rest: Rest<string | null> = {}): TextSpec<string | null> =>
  ({ kind: 'text', nonEmpty: true, default: null, help, ...rest });
export const onOff = (fallback: boolean, help: string, rest: Rest<boolean> = {}): SwitchSpec => ({ kind: 'switch', default: fallback, help, ...rest });
export const choice = <T extends string>(choices: readonly T[], fallback: NoInfer<T>, help: string, rest: Rest<T> = {}): ChoiceSpec<T> =>
  ({ kind: 'choice', choices, default: fallback, help, ...rest });
export const list = (says: string, item: (value: string) => boolean, help: string, rest: Rest<string[]> = {}): ListSpec =>
  ({ kind: 'list', default: [], says, item, help, ...rest });

/** `maxPayload` -> `--max-payload`. */
export const flagOf = (key: string): string => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** The defaults of a spec, frozen. */
export function defaultsOf<S extends OptionSpecs>(specs: S): Readonly<OptionsOf<S>> {
  return Object.freeze(Object.fromEntries(Object.entries(specs).map(([key, spec]) => [key, spec.default]))) as OptionsOf<S>;
}

/** The flag of each option. */
export function flagsOf<S extends OptionSpecs>(specs: S): Readonly<Record<keyof S, string>> {
  return Object.fromEntries(Object.keys(specs).map((key) => [key, flagOf(key)])) as Record<keyof S, string>;
}

/** How a program's validator reports. */
export interface Reporting {
  /** How a message names an option: `maxPayload` or `--max-payload`. */
  name: (key: string) => string;
  /** The message of a key the spec does not declare. */
  unknown: (key: string) => string;
  /** Whether a value of the wrong type throws TypeError (the library's callers) or RangeError like any bad value. */
  typeErrors: boolean;
}

/**
 * Merges `input` over the spec's defaults (an undefined field counts as absent) and checks every value,
 * then every relation, in the spec's order.
 * @throws TypeError for an unknown key (and, with `typeErrors`, a value of the wrong type); RangeError
 *   for a value the rules refuse, as `<name> must be ... (got <value>)`.
 */
export function checkOptions<S extends OptionSpecs>(specs: S, input: Partial<OptionsOf<S>>, reporting: Reporting): OptionsOf<S> {
  for (const key of Object.keys(input)) {
    if (!Object.hasOwn(specs, key)) throw new TypeError(reporting.unknown(key));
  }
  const given = Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined));
  const options: Record<string, unknown> = { ...defaultsOf(specs), ...given };
  for (const [key, spec] of Object.entries(specs)) checkValue(reporting.name(key), spec, options[key], reporting.typeErrors);
  for (const spec of Object.values(specs)) {
    const broken = spec.relation?.(options, reporting.name);
    if (broken !== undefined) throw new RangeError(broken);
  }
  return options as OptionsOf<S>;
}

function checkValue(name: string, spec: OptionSpec, value: unknown, typeErrors: boolean): void {
  const got = spec.secret ? '' : ` (got ${show(spec.url && typeof value === 'string' ? redactUrl(value) : value)})`;
  const refuse = (predicate: string, wrongType = false): never => {
    throw new (wrongType && typeErrors ? TypeError : RangeError)(`${name} ${predicate}${got}`);
  };
  if (value === null && spec.default === null) return;
  switch (spec.kind) {
    case 'integer': {
      const range = `must be an integer from ${spec.min} to ${spec.max}`;
      if (typeof value !== 'number' || Number.isNaN(value)) refuse(range, true);
      if (!Number.isInteger(value) || (value as number) < spec.min || (value as number) > spec.max) refuse(range);
      break;
    }
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) refuse(spec.says, true);
      if ((value as number) > spec.max || (value as number) < spec.min || (spec.aboveMin && value === spec.min)) refuse(spec.says);
      break;
    case 'text':
      if (typeof value !== 'string' || (spec.nonEmpty && value === '')) refuse(spec.nonEmpty ? 'must be a non-empty string' : 'must be a string', true);
      break;
    case 'switch':
      if (typeof value !== 'boolean') refuse('must be true or false', true);
      break;
    case 'choice':
      if (!(spec.choices as readonly unknown[]).includes(value)) refuse(`must be one of ${spec.choices.join(', ')}`);
      break;
    case 'list':
      if (!Array.isArray(value) || value.some((item) => typeof item !== 'string' || !spec.item(item))) refuse(spec.says);
      break;
  }
  const broken = (spec as Common<unknown>).rule?.(value);
  if (broken !== undefined) refuse(broken);
}

/** A value as a message quotes it: text in quotes, lists as JSON, the rest as written. */
export function show(value: unknown): string {
  return typeof value === 'string' || Array.isArray(value) ? JSON.stringify(value) : String(value);
}

/**
 * Adds every option of a spec to a yargs parser (the flag, its default, its `--help` line) and gives the
 * parser back with its type as it was: the spec's values are read with {@link optionsFromArgs}.
 */
export function withOptions<P extends { option(key: string, definition: object): unknown }>(parser: P, specs: OptionSpecs): P {
  for (const [key, spec] of Object.entries(specs)) parser.option(flagOf(key).slice(2), yargsOption(spec));
  return parser;
}

function yargsOption(spec: OptionSpec): object {
  const optional = spec.default === null ? {} : { default: spec.default };
  switch (spec.kind) {
    case 'integer':
    case 'number':
      return { coerce: numeric, requiresArg: true, describe: spec.help, ...optional };
    case 'text':
      return { type: 'string', describe: spec.help, ...optional };
    case 'switch':
      return { type: 'boolean', describe: spec.help, ...optional };
    case 'choice':
      return { type: 'string', choices: spec.choices, describe: spec.help, ...optional };
    case 'list':
      return { type: 'string', default: spec.default.join(','), describe: spec.help };
  }
}

/**
 * The options the parsed flags give (yargs' camelCase keys): a flag not given takes its default; a list
 * is split at its commas. Values are as given, for {@link checkOptions} to check.
 */
export function optionsFromArgs<S extends OptionSpecs>(specs: S, args: Record<string, unknown>): Partial<OptionsOf<S>> {
  return Object.fromEntries(
    Object.entries(specs).map(([key, spec]) => {
      const value = args[key];
      if (spec.kind === 'list') return [key, String(value ?? '').split(',').map((item) => item.trim()).filter(Boolean)];
      return [key, value === undefined ? spec.default : value];
    }),
  ) as Partial<OptionsOf<S>>;
}

/** The command-line arguments that give `options` to a program of this spec (what a benchmark spawns it with). */
export function argsOf<S extends OptionSpecs>(specs: S, options: Partial<OptionsOf<S>>): string[] {
  return Object.entries(options).flatMap(([key, value]) => {
    const spec = specs[key];
    if (spec === undefined) throw new TypeError(`unknown option "${key}"`);
    if (value === undefined || value === null) return [];
    if (spec.kind === 'switch') return [value ? flagOf(key) : `--no-${flagOf(key).slice(2)}`];
    return [flagOf(key), Array.isArray(value) ? value.join(',') : String(value)];
  });
}
