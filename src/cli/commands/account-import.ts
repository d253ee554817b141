import fs from 'node:fs/promises';
import path from 'node:path';
import { AFFILIATIONS } from '../../account/account.service.ts';
import { ACCOUNT_IMPORT_COLUMNS, type CheckedRow, checkImportRows } from '../../account/account-import.ts';
import type { AccountInput, Problem } from '../../account/account-input.ts';
import type { AdminClient } from '../admin-client.ts';
import { ApiError } from '../admin-client.ts';
import type { Command, RunContext } from '../command.ts';
import { assertLetterAbsent, writeLetter } from '../letter.ts';
import { csvLine, out, printJson } from '../output.ts';
import type { IssuedJson } from './account-types.ts';
import { ImportProgress, readCsvRows, type RowError } from '../csv-file.ts';
import { FIELD_COLUMNS } from './account-fields.ts';

/** Accounts created at the same time: the server hashes each initial password. */
const CONCURRENCY = 4;
const PROGRESS_EVERY = 50;

type Outcome = { kind: 'created'; line: number; commonId: string; initialPassword: string; letterError?: string } | { kind: 'failed'; line: number; commonId: string | null; problems: Problem[] };

/** Everything that went wrong with a row: its refusals, or a letter that could not be written. */
const problems = (o: Outcome): Problem[] => (o.kind === 'failed' ? o.problems : o.letterError ? [{ code: 'letter_not_written', message: o.letterError }] : []);

async function importRow(api: AdminClient, row: CheckedRow<AccountInput>, letters: string | undefined): Promise<Outcome> {
  const failed = (commonId: string | null, problem: Problem[]): Outcome => ({ kind: 'failed', line: row.line, commonId, problems: problem });
  // Every problem the file shows was found before anything was sent (src/account/account-import.ts).
  const input = row.value;
  if (!input) return failed(row.commonId, row.problems);
  const commonId = input.commonId.trim();
  const letter = letters ? path.join(letters, `${commonId}.html`) : undefined;
  if (letter) {
    try {
      await assertLetterAbsent(letter);
    } catch (error) {
      return failed(commonId, [{ code: 'letter_exists', message: (error as Error).message }]);
    }
  }
  let result: IssuedJson;
  try {
    result = await api.post<IssuedJson>('/accounts', { commonId, name: input.name, affiliation: input.affiliation, email: input.email, ...input.profile });
  } catch (error) {
    // A refusal concerns this row; anything else (the server went away) ends the import.
    if (error instanceof ApiError) return failed(commonId, [{ code: error.code, message: error.message }]);
    throw error;
  }
  const created: Outcome = { kind: 'created', line: row.line, commonId: result.commonId, initialPassword: result.initialPassword };
  if (letter) {
    await writeLetter(letter, { name: result.account.name, commonId: result.commonId, password: result.initialPassword, serverUrl: api.url, issuedAt: result.account.passwordSetAt }).catch(
      (error: Error) => {
        created.letterError = `account created, but ${error.message}`;
      },
    );
  }
  return created;
}

export const importCommand: Command = {
  name: 'import',
  synopsis: 'FILE.csv [--letters DIR]',
  summary: 'Create the accounts listed in a CSV file.',
  positionals: ['FILE.csv'],
  optionHelp: ['  --letters DIR    write a printable letter per created account: DIR/<common id>.html'],
  options: { letters: { type: 'string' } },
  notes: [
    'The file (UTF-8, at most 10 MB) has a header row with the columns common_id,name,affiliation and any of',
    `${['email', ...FIELD_COLUMNS].join(',')}, and one account per row;`,
    `affiliation is one of ${AFFILIATIONS.join(', ')}. An empty cell leaves a field unset;`,
    'email_verified is true or false (default true: the university registered the address), entitlements are',
    'URIs separated by spaces, names in Latin script go in family_name/given_name, in Japanese script in',
    'family_name_ja/given_name_ja, their reading (katakana, hiragana or half-width kana) in *_kana.',
    'Prints common_id,initial_password (CSV) for the created accounts, or with --json',
    '{"created": [{commonId, initialPassword}], "errors": [{row, commonId, error, problems: [{code, message, field}]}]}.',
    'Rows that are invalid or refused are reported on stderr as "row N: problem; problem; ..." with every problem',
    'of the row (N is the line of the file), and nothing is created for them. On a terminal the progress is one',
    'line rewritten in place. Exit status 0 when every row was created, 1 otherwise.',
  ].join('\n'),
  async run(ctx: RunContext) {
    const rows = checkImportRows('accounts', await readCsvRows(ctx.positionals[0]!, ctx.command, ACCOUNT_IMPORT_COLUMNS));
    const letters = ctx.options.string('letters');
    const api = await ctx.connect();
    if (letters) await fs.mkdir(letters, { recursive: true, mode: 0o700 });

    const outcomes: Array<Outcome | undefined> = new Array(rows.length);
    let next = 0;
    let flushed = 0;
    let fatal: unknown;
    const progress = new ImportProgress('imported', rows.length, { every: PROGRESS_EVERY });
    if (!ctx.json) out('common_id,initial_password');

    const settle = (index: number, outcome: Outcome) => {
      outcomes[index] = outcome;
      const found = problems(outcome);
      // A created account whose letter failed counts as imported, and its row tells of the letter.
      if (found.length)
        progress.failed(
          outcome.line,
          found.map((p) => p.message),
          outcome.kind === 'created',
        );
      else progress.succeeded();
      // CSV lines go out in file order as soon as they are known, so an interrupted import loses nothing.
      for (; flushed < rows.length && outcomes[flushed]; flushed++) {
        const o = outcomes[flushed]!;
        if (!ctx.json && o.kind === 'created') out(csvLine([o.commonId, o.initialPassword]));
      }
    };

    const worker = async () => {
      while (fatal === undefined && next < rows.length) {
        const index = next++;
        try {
          settle(index, await importRow(api, rows[index]!, letters));
        } catch (error) {
          fatal ??= error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, rows.length) }, worker)).finally(() => progress.end());

    const done = outcomes.filter((o): o is Outcome => o !== undefined);
    if (ctx.json) {
      printJson({
        created: done.flatMap((o) => (o.kind === 'created' ? [{ commonId: o.commonId, initialPassword: o.initialPassword }] : [])),
        errors: done.flatMap((o): RowError[] => {
          const found = problems(o);
          return found.length ? [{ row: o.line, commonId: o.commonId, error: found.map((p) => p.message).join('; '), problems: found }] : [];
        }),
      });
    } else {
      // After a fatal error, rows behind the one that never finished are still printed.
      for (const o of outcomes.slice(flushed)) if (o?.kind === 'created') out(csvLine([o.commonId, o.initialPassword]));
    }
    if (fatal !== undefined) throw fatal;
    if (done.some((o) => problems(o).length)) process.exitCode = 1;
  },
};
