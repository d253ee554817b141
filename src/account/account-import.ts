import type { CsvColumns, CsvRow } from '../shared/csv-table.ts';
import { ACCOUNT_FIELDS, fieldFromText } from './account-fields.ts';
import { type AccountInput, checkAccountInput, type Problem, problemOf } from './account-input.ts';
import { COMMON_ID_PATTERN } from './common-id.ts';
import { revocationReason, revocationTime } from './revocation.ts';

/**
 * The rows of an import file (accounts or revocations) checked before anything is done: every
 * problem of a row at once, so that the CLI and the console report the same and a row is fixed in
 * one go. A row with a problem is not acted on; the others are, one by one, and may still be
 * refused then (an account that exists, one outside the operator's scope).
 */

export const ACCOUNT_IMPORT_COLUMNS: CsvColumns = { required: ['common_id', 'name', 'affiliation'], optional: ['email', ...ACCOUNT_FIELDS.map((field) => field.column)] };
export const REVOCATION_IMPORT_COLUMNS: CsvColumns = { required: ['common_id', 'revoke_on'], optional: ['reason'] };

export type ImportKind = 'accounts' | 'revocations';
export const IMPORT_COLUMNS: Record<ImportKind, CsvColumns> = { accounts: ACCOUNT_IMPORT_COLUMNS, revocations: REVOCATION_IMPORT_COLUMNS };

export interface CheckedRow<T> {
  line: number;
  /** As the file has it (for the report), or null when the cell is empty. */
  commonId: string | null;
  /** What to act on, when the row has no problem. */
  value?: T;
  problems: Problem[];
}

export interface RevocationInput {
  commonId: string;
  /** The date as written (YYYY-MM-DD or an instant), read in the university's time zone when applied. */
  on: string;
  reason: string | null;
}

/** An account row's cells as the create takes them: an empty cell leaves a field unset. */
function accountInput(cells: CsvRow['fields'], problems: Problem[]): AccountInput {
  const profile: Record<string, unknown> = {};
  for (const field of ACCOUNT_FIELDS) {
    const cell = cells[field.column];
    if (!cell) continue;
    try {
      profile[field.key] = fieldFromText(field, cell);
    } catch (error) {
      problems.push(problemOf(error, field.column));
    }
  }
  return { commonId: cells.common_id ?? '', name: cells.name ?? '', affiliation: cells.affiliation ?? '', email: cells.email || null, profile };
}

export function checkAccountRow(row: CsvRow): CheckedRow<AccountInput> {
  const problems: Problem[] = [];
  const input = accountInput(row.fields, problems);
  // A cell that could not be read as its type is already reported; the rest is judged without it.
  problems.push(...checkAccountInput(input).problems);
  return { line: row.line, commonId: row.fields.common_id || null, ...(problems.length ? {} : { value: input }), problems };
}

export function checkRevocationRow(row: CsvRow): CheckedRow<RevocationInput> {
  const problems: Problem[] = [];
  const commonId = (row.fields.common_id ?? '').trim();
  if (!COMMON_ID_PATTERN.test(commonId)) problems.push({ code: 'invalid_common_id', message: 'the Common ID must be exactly 10 digits', field: 'common_id' });
  const on = (row.fields.revoke_on ?? '').trim();
  if (!on) problems.push({ code: 'invalid_request', message: 'revoke_on is empty', field: 'revoke_on' });
  else {
    // Only whether it is a date: which day it is depends on the time zone, applied when it is acted on.
    try {
      revocationTime(on, 'UTC', 'revoke_on');
    } catch (error) {
      problems.push(problemOf(error, 'revoke_on'));
    }
  }
  let reason: string | null = null;
  try {
    reason = revocationReason(row.fields.reason);
  } catch (error) {
    problems.push(problemOf(error, 'reason'));
  }
  return { line: row.line, commonId: row.fields.common_id || null, ...(problems.length ? {} : { value: { commonId, on, reason } }), problems };
}

/**
 * Every row checked, and a Common ID met again further down the file refused there: a file
 * that names someone twice is a mistake the operator should see, not a second create or schedule.
 */
export function checkImportRows(kind: 'accounts', rows: readonly CsvRow[]): Array<CheckedRow<AccountInput>>;
export function checkImportRows(kind: 'revocations', rows: readonly CsvRow[]): Array<CheckedRow<RevocationInput>>;
export function checkImportRows(kind: ImportKind, rows: readonly CsvRow[]): Array<CheckedRow<AccountInput | RevocationInput>>;
export function checkImportRows(kind: ImportKind, rows: readonly CsvRow[]): Array<CheckedRow<AccountInput | RevocationInput>> {
  const firstLine = new Map<string, number>();
  return rows.map((row) => {
    const checked: CheckedRow<AccountInput | RevocationInput> = kind === 'accounts' ? checkAccountRow(row) : checkRevocationRow(row);
    const id = (row.fields.common_id ?? '').trim();
    const first = id ? firstLine.get(id) : undefined;
    if (first !== undefined) {
      checked.problems.push({ code: 'duplicate_common_id', message: `Common ID ${id} is also on row ${first}`, field: 'common_id' });
      delete checked.value;
    } else if (id) firstLine.set(id, row.line);
    return checked;
  });
}
