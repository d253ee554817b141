import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';

/** Bad or missing arguments: one line on stderr, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  /** The command whose --help explains the fix, such as "account create"; empty for the top level. */
  command: string;

  constructor(message: string, command = '') {
    super(message);
    this.command = command;
  }
}

/** Something failed at run time (the server refused, a file exists): one line on stderr, exit code 1. */
export class CliError extends Error {
  override name = 'CliError';
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Parsed {
  values: Values;
  positionals: string[];
}

/** Options every command takes. */
export const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const satisfies ParseArgsOptionsConfig;
export const JSON_OPTION = { json: { type: 'boolean' } } as const satisfies ParseArgsOptionsConfig;
/** Options of every command that talks to the running server. */
export const SERVER_OPTIONS = {
  ...JSON_OPTION,
  url: { type: 'string' },
  token: { type: 'string' },
} as const satisfies ParseArgsOptionsConfig;

export const SERVER_OPTIONS_HELP = [
  '  --json           print the result as JSON',
  '  --url URL        the server (default: $AKAMON_URL, else http://localhost:$PORT, port 3000)',
  '  --token TOKEN    operator token (default: $AKAMON_OPERATOR_TOKEN, else $AKAMON_DATA_DIR/operator-token)',
].join('\n');

/** True when the arguments ask for help (before any "--"). */
export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** Rewrites node:util's parse errors into the short form the CLI prints. */
function usageMessage(error: Error & { code?: string }): string {
  const option = /'(-[^' ]+)/.exec(error.message)?.[1];
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${option ?? ''}`.trim();
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${/'([^']*)'/.exec(error.message)?.[1] ?? ''}`.trim();
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/does not take an argument/.test(error.message)) return `${option} does not take a value`;
      return `${option ?? 'an option'} needs a value`;
    default:
      return error.message.split('\n')[0]!;
  }
}

/**
 * Parses the arguments of one command strictly. `positionals` names the positional arguments
 * the command requires (in order); any other positional is an error.
 */
export function parseCommand(command: string, argv: string[], options: ParseArgsOptionsConfig, positionals: readonly string[] = []): Parsed {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, ...HELP_OPTION }, strict: true, allowPositionals: positionals.length > 0 });
  } catch (error) {
    throw new UsageError(usageMessage(error as Error), command);
  }
  if (parsed.positionals.length < positionals.length) {
    throw new UsageError(`missing ${positionals[parsed.positionals.length]}`, command);
  }
  if (parsed.positionals.length > positionals.length) {
    throw new UsageError(`unexpected argument ${parsed.positionals[positionals.length]}`, command);
  }
  return { values: parsed.values as Values, positionals: parsed.positionals };
}

/** Reading typed option values; each failure is a UsageError naming the command. */
export class OptionReader {
  readonly command: string;
  readonly values: Values;

  constructor(command: string, values: Values) {
    this.command = command;
    this.values = values;
  }

  fail(message: string): never {
    throw new UsageError(message, this.command);
  }

  string(name: string): string | undefined {
    const value = this.values[name];
    return typeof value === 'string' ? value : undefined;
  }

  required(name: string): string {
    const value = this.string(name);
    if (value === undefined || value.trim() === '') this.fail(`missing --${name}`);
    return value;
  }

  list(name: string): string[] | undefined {
    const value = this.values[name];
    return Array.isArray(value) ? value : undefined;
  }

  flag(name: string): boolean {
    return this.values[name] === true;
  }

  /** --name / --no-name: true, false, or undefined when neither is given. */
  toggle(name: string): boolean | undefined {
    const on = this.flag(name);
    const off = this.flag(`no-${name}`);
    if (on && off) this.fail(`--${name} and --no-${name} contradict each other`);
    return on ? true : off ? false : undefined;
  }

  integer(name: string, min: number, max: number): number | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) this.fail(`--${name} must be a whole number from ${min} to ${max}`);
    return Number(raw);
  }

  oneOf<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    if (!allowed.includes(raw as T)) this.fail(`--${name} must be one of ${allowed.join(', ')}`);
    return raw as T;
  }

  date(name: string): string | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    if (Number.isNaN(new Date(raw).getTime())) this.fail(`--${name} must be a date, such as 2026-04-01 or 2026-04-01T09:00:00Z`);
    return raw;
  }
}
