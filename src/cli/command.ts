import type { ParseArgsOptionsConfig } from 'node:util';
import { OptionReader, SERVER_OPTIONS, SERVER_OPTIONS_HELP, JSON_OPTION, parseCommand } from './args.ts';
import { connect, type AdminClient } from './admin-client.ts';
import { printJson } from './output.ts';

export interface RunContext {
  /** The full command, such as "account create" (for messages). */
  command: string;
  options: OptionReader;
  positionals: string[];
  json: boolean;
  /** The admin API client for --url/--token (or their defaults). */
  connect(): Promise<AdminClient>;
  /** Prints the JSON result with --json, else the human form. */
  result(json: unknown, human: () => void): void;
}

export interface Command {
  name: string;
  /** Arguments after "akamon <group> <name>", for the usage line. */
  synopsis: string;
  summary: string;
  /** Help lines for the command's own options ("  --id ID   ..."). */
  optionHelp?: string[];
  /** Extra paragraphs after the options. */
  notes?: string;
  options?: ParseArgsOptionsConfig;
  /** Required positional arguments, by name. */
  positionals?: string[];
  /** False for commands that do not talk to the server (they take --json only). */
  server?: boolean;
  run(ctx: RunContext): Promise<void>;
}

export interface Group {
  name: string;
  summary: string;
  commands: Command[];
}

/** "account create" for a command of a group, "migrate" for a top-level one. */
export function commandPath(group: Group | undefined, command: Command): string {
  return group ? `${group.name} ${command.name}` : command.name;
}

export function commandHelp(path: string, command: Command): string {
  const lines = [`Usage: akamon ${path}${command.synopsis ? ` ${command.synopsis}` : ''}`, '', command.summary];
  const options = [...(command.optionHelp ?? []), command.server === false ? '  --json           print the result as JSON' : SERVER_OPTIONS_HELP, '  -h, --help       show this help'];
  lines.push('', 'Options:', ...options);
  if (command.notes) lines.push('', command.notes);
  return lines.join('\n');
}

export function groupHelp(group: Group): string {
  const width = Math.max(...group.commands.map((c) => c.name.length)) + 2;
  return [
    `Usage: akamon ${group.name} <command> [options]`,
    '',
    group.summary,
    '',
    'Commands:',
    ...group.commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    `Run "akamon ${group.name} <command> --help" for the options of a command.`,
  ].join('\n');
}

export async function runCommand(path: string, command: Command, argv: string[]): Promise<void> {
  const parsed = parseCommand(path, argv, { ...(command.server === false ? JSON_OPTION : SERVER_OPTIONS), ...command.options }, command.positionals);
  const options = new OptionReader(path, parsed.values);
  const json = options.flag('json');
  await command.run({
    command: path,
    options,
    positionals: parsed.positionals,
    json,
    connect: () => connect({ url: options.string('url'), token: options.string('token') }),
    result: (value, human) => (json ? printJson(value) : human()),
  });
}
