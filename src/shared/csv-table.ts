import type * as CsvParse from 'csv-parse/sync';
import { DomainError } from './errors.ts';
import { lazyModule } from './lazy-module.ts';

const csvParse = lazyModule((require) => require('csv-parse/sync') as typeof CsvParse);

/**
 * Reading an uploaded or local CSV file of rows for an import (accounts, revocations, tokens,
 * education records): the CLI and the console take the same files and refuse them for the same
 * reasons, before any row is acted on.
 */

export interface CsvColumns {
  required: readonly string[];
  optional: readonly string[];
}

export interface CsvRow {
  /** The line of the file the row ends on (the header is line 1). */
  line: number;
  fields: Record<string, string | undefined>;
}

/** Refused files carry a code (csv_*) and details for the page texts; `name` names the file in the message. */
export function parseCsvTable(bytes: Uint8Array, columns: CsvColumns, limits: { name: string; maxBytes: number; maxRows?: number }): CsvRow[] {
  const { name } = limits;
  const all = [...columns.required, ...columns.optional];
  if (bytes.byteLength > limits.maxBytes)
    throw new DomainError('csv_too_large', `${name} is larger than ${Math.round(limits.maxBytes / 1024 / 1024)} MB; split it`, { megabytes: Math.round(limits.maxBytes / 1024 / 1024) });
  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new DomainError('csv_not_utf8', `${name} is not UTF-8 text (save it as "CSV UTF-8")`);
  }
  let records: Array<{ record: string[]; info: { lines: number } }> = [];
  // Outside the try: a library that failed to load is the server's fault, not the file's.
  const { parse } = csvParse();
  try {
    records = parse(text, { bom: true, trim: true, skip_empty_lines: true, relax_column_count: true, info: true }) as unknown as typeof records;
  } catch (error) {
    throw new DomainError('csv_invalid', `${name} is not valid CSV: ${(error as Error).message.split('\n')[0]}`);
  }
  const [header, ...data] = records;
  if (!header) throw new DomainError('csv_empty', `${name} is empty`);
  const names = header.record.map((column) => column.toLowerCase());
  const unknown = names.filter((column) => !all.includes(column));
  if (unknown.length)
    throw new DomainError('csv_unknown_column', `${name} has unknown column ${unknown.join(', ')}; the columns are ${all.join(',')}`, { unknown: unknown.join(', '), columns: all.join(',') });
  const missing = columns.required.filter((column) => !names.includes(column));
  if (missing.length)
    throw new DomainError(
      'csv_missing_column',
      `${name} has no ${missing.join(', ')} column; the header must be ${all.join(',')}${columns.optional.length ? ` (${columns.optional.join(', ')} optional)` : ''}`,
      {
        missing: missing.join(', '),
        columns: all.join(','),
      },
    );
  if (new Set(names).size !== names.length) throw new DomainError('csv_duplicate_column', `${name} has a column twice`);
  if (limits.maxRows !== undefined && data.length > limits.maxRows) throw new DomainError('csv_too_many_rows', `${name} has more than ${limits.maxRows} rows; split it`, { max: limits.maxRows });
  return data.map(({ record, info }) => ({ line: info.lines, fields: Object.fromEntries(names.map((column, i) => [column, record[i]])) }));
}

// A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * One CSV line. `neutralize` (a report meant for a spreadsheet) prefixes a cell that a
 * spreadsheet would run as a formula with an apostrophe, so it shows as the text it is.
 */
export function csvLine(values: readonly string[], options: { neutralize?: boolean } = {}): string {
  return values
    .map((value) => (options.neutralize && FORMULA_START.test(value) ? `'${value}` : value))
    .map((v) => (/[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v))
    .join(',');
}
