import fs from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { UsageError } from './args.ts';
import { ApiError } from './admin-client.ts';
import { err } from './output.ts';
import { CSV_MAX_BYTES } from '../config/defaults.ts';

const MAX_BYTES = CSV_MAX_BYTES;

export interface CsvRow {
  /** The line of the file the row ends on (the header is line 1). */
  line: number;
  fields: Record<string, string | undefined>;
}

/** Reads and checks a whole CSV file first: a file without the expected columns is a usage error. */
export async function readCsvRows(file: string, command: string, columns: { required: readonly string[]; optional: readonly string[] }): Promise<CsvRow[]> {
  const COLUMNS = [...columns.required, ...columns.optional];
  const REQUIRED_COLUMNS = columns.required;
  const fail = (message: string): never => {
    throw new UsageError(message, command);
  };
  const stat = await fs.stat(file).catch(() => fail(`cannot read ${file}`));
  if (!stat.isFile()) fail(`${file} is not a file`);
  if (stat.size > MAX_BYTES) fail(`${file} is larger than 10 MB; split it`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(await fs.readFile(file));
  } catch {
    fail(`${file} is not UTF-8 text (save it as "CSV UTF-8")`);
  }
  let records: Array<{ record: string[]; info: { lines: number } }>;
  try {
    records = parse(text!, { bom: true, trim: true, skip_empty_lines: true, relax_column_count: true, info: true }) as unknown as typeof records;
  } catch (error) {
    fail(`${file} is not valid CSV: ${(error as Error).message.split('\n')[0]}`);
  }
  const [header, ...data] = records!;
  if (!header) fail(`${file} is empty`);
  const names = header!.record.map((name) => name.toLowerCase());
  const unknown = names.filter((name) => !COLUMNS.includes(name));
  if (unknown.length) fail(`${file} has unknown column ${unknown.join(', ')}; the columns are ${COLUMNS.join(',')}`);
  const missing = REQUIRED_COLUMNS.filter((name) => !names.includes(name));
  if (missing.length) fail(`${file} has no ${missing.join(', ')} column; the header must be ${COLUMNS.join(',')}${columns.optional.length ? ` (${columns.optional.join(', ')} optional)` : ''}`);
  if (new Set(names).size !== names.length) fail(`${file} has a column twice`);
  return data.map(({ record, info }) => ({
    line: info.lines,
    fields: Object.fromEntries(names.map((name, i) => [name, record[i]])),
  }));
}

export interface RowError {
  row: number;
  commonId: string | null;
  error: string;
}

/**
 * Sends the rows to the server one at a time. A row the server refuses is reported on stderr
 * ("row N: reason") and the rest go on; progress goes to stderr every 100 rows and at the end.
 */
export async function sendRows<T>(rows: CsvRow[], verb: string, send: (row: CsvRow) => Promise<T>): Promise<{ done: T[]; errors: RowError[] }> {
  const done: T[] = [];
  const errors: RowError[] = [];
  for (const [index, row] of rows.entries()) {
    try {
      done.push(await send(row));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      errors.push({ row: row.line, commonId: row.fields.common_id || null, error: error.message });
      err(`row ${row.line}: ${error.message}`);
    }
    if ((index + 1) % 100 === 0 || index + 1 === rows.length) err(`${verb} ${done.length}/${rows.length}`);
  }
  return { done, errors };
}
