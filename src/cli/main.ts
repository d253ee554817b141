import { CliError, UsageError, wantsHelp } from './args.ts';
import { commandHelp, commandPath, groupHelp, runCommand, type Command, type Group } from './command.ts';
import { accountGroup } from './commands/account.ts';
import { clientGroup, spGroup } from './commands/client.ts';
import { keysGroup } from './commands/keys.ts';
import { tokenGroup } from './commands/token.ts';
import { operatorGroup } from './commands/operator.ts';
import { educationGroup } from './commands/education.ts';
import { migrateCommand } from './commands/migrate.ts';
import { signinsCommand } from './commands/signins.ts';
import { auditCommand } from './commands/audit.ts';
import { err, out, printJsonError } from './output.ts';
import { ApiError } from './admin-client.ts';
import { DomainError } from '../shared/errors.ts';

const GROUPS: Group[] = [accountGroup, clientGroup, spGroup, tokenGroup, educationGroup, keysGroup, operatorGroup];
const COMMANDS: Command[] = [signinsCommand, auditCommand, migrateCommand];

function mainHelp(): string {
  const entries = [...GROUPS.flatMap((g) => g.commands.map((c) => [commandPath(g, c), c.summary] as const)), ...COMMANDS.map((c) => [c.name, c.summary] as const)];
  const width = Math.max(...entries.map(([path]) => path.length)) + 2;
  return [
    'Usage: akamon <command> [options]',
    '',
    'The Akamon operator CLI. Every command but migrate talks to the running server (start it with `npm start`):',
    'the server is --url, else $AKAMON_URL, else http://localhost:$PORT (3000); the operator token is --token,',
    'else $AKAMON_OPERATOR_TOKEN, else the file operator-token in $AKAMON_DATA_DIR (./data) that the first start wrote.',
    '',
    'Commands:',
    ...entries.map(([path, summary]) => `  ${path.padEnd(width)}${summary}`),
    '',
    'Run "akamon <command> --help" for the options of a command. Every command takes --json.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined) throw new UsageError('missing command');
  if (name === '--help' || name === '-h' || name === 'help') {
    out(mainHelp());
    return;
  }
  const group = GROUPS.find((g) => g.name === name);
  let command: Command | undefined;
  let args = rest;
  if (group) {
    const [sub, ...subArgs] = rest;
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
      if (sub === undefined) throw new UsageError(`missing ${group.name} command`, group.name);
      out(groupHelp(group));
      return;
    }
    command = group.commands.find((c) => c.name === sub);
    if (!command) throw new UsageError(`unknown command "${group.name} ${sub}"`, group.name);
    args = subArgs;
  } else {
    command = COMMANDS.find((c) => c.name === name);
    if (!command) throw new UsageError(`unknown command "${name}"`);
  }
  const path = commandPath(group, command);
  if (wantsHelp(args)) {
    out(commandHelp(path, command));
    return;
  }
  try {
    await runCommand(path, command, args);
  } catch (error) {
    if (error instanceof UsageError && !error.command) error.command = path;
    throw error;
  }
}

/** Messages are one line, and text from the server cannot move the cursor or recolour the terminal. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
}

/** --json anywhere before a "--": failures are printed as JSON too. */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * What a failure says: Akamon's own words (the CLI's, the server's, the domain's), else only what
 * kind of error it was. A message of the platform's may quote a request and its headers (the token).
 */
function messageOf(error: unknown): string {
  if (error instanceof CliError || error instanceof UsageError || error instanceof DomainError) return oneLine(error.message);
  const name = error instanceof Error ? error.name : typeof error;
  return `unexpected ${name}; run it again with AKAMON_DEBUG=1 to see where`;
}

/** The machine code of a failure: the server's for a refusal, else what kind of failure it was. */
function errorCode(error: unknown): string {
  if (error instanceof ApiError) return error.code;
  if (error instanceof UsageError) return 'usage_error';
  return error instanceof CliError ? 'failed' : 'internal_error';
}

export async function run(argv: string[]): Promise<number> {
  try {
    await main(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    const usage = error instanceof UsageError;
    const message = messageOf(error);
    const help = usage ? ` (see akamon ${error.command ? `${error.command} ` : ''}--help)` : '';
    if (process.env.AKAMON_DEBUG && !(error instanceof CliError) && !usage) err(String((error as Error).stack));
    if (wantsJson(argv)) printJsonError(errorCode(error), `${message}${help}`);
    else err(`akamon: ${message}${help}`);
    return usage ? 2 : 1;
  }
}

process.exitCode = await run(process.argv.slice(2));
