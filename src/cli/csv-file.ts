import fs from 'node:fs/promises';
import { UsageError } from './args.ts';
import { ApiError } from './admin-client.ts';
import { CSV_MAX_BYTES } from '../config/defaults.ts';
import { DomainError } from '../shared/errors.ts';
import { parseCsvTable, type CsvColumns, type CsvRow } from '../shared/csv-table.ts';

export type { CsvRow };

/** Reads and checks a whole CSV file first: a file without the expected columns is a usage error. */
export async function readCsvRows(file: string, command: string, columns: CsvColumns): Promise<CsvRow[]> {
  const fail = (message: string): never => {
    throw new UsageError(message, command);
  };
  const stat = await fs.stat(file).catch(() => fail(`cannot read ${file}`));
  if (!stat.isFile()) fail(`${file} is not a file`);
  // Checked before reading: a huge file is refused without loading it.
  if (stat.size > CSV_MAX_BYTES) fail(`${file} is larger than 10 MB; split it`);
  try {
    return parseCsvTable(await fs.readFile(file), columns, { name: file, maxBytes: CSV_MAX_BYTES });
  } catch (error) {
    if (error instanceof DomainError) return fail(error.message);
    throw error;
  }
}

/**
 * How far an import has come, on stderr. On a terminal one line is rewritten in place
 * ("imported 120/500, 3 errors"), and a row's error is printed above it; elsewhere (a log, a pipe)
 * a line every `every` rows and at the end, as scripts have always read it.
 */
export class ImportProgress {
  readonly #verb: string;
  readonly #total: number;
  readonly #tty: boolean;
  readonly #every: number;
  readonly #write: (text: string) => void;
  #done = 0;
  #errors = 0;
  #settled = 0;
  #drawnAt = 0;
  #drawn = false;

  constructor(verb: string, total: number, options: { tty?: boolean; every?: number; write?: (text: string) => void } = {}) {
    this.#verb = verb;
    this.#total = total;
    this.#tty = options.tty ?? Boolean(process.stderr.isTTY);
    this.#every = options.every ?? 100;
    this.#write = options.write ?? ((text) => process.stderr.write(text));
  }

  /** The progress line: `verb done/total`, with the errors so far on a terminal. */
  line(): string {
    const base = `${this.#verb} ${this.#done}/${this.#total}`;
    return this.#tty && this.#errors ? `${base}, ${this.#errors} error${this.#errors === 1 ? '' : 's'}` : base;
  }

  succeeded(): void {
    this.#done++;
    this.#settle();
  }

  /** A row with problems: "row N: problem; problem; ..." on a line of its own; `imported` when it was done all the same. */
  failed(line: number, problems: readonly string[], imported = false): void {
    this.#errors++;
    if (imported) this.#done++;
    this.#clear();
    this.#write(`row ${line}: ${problems.join('; ')}\n`);
    this.#settle();
  }

  #settle(): void {
    this.#settled++;
    const last = this.#settled === this.#total;
    if (!this.#tty) {
      if (this.#settled % this.#every === 0 || last) this.#write(`${this.line()}\n`);
      return;
    }
    // Redrawn at most ten times a second: a fast import would otherwise spend its time on the terminal.
    const now = Date.now();
    if (last || !this.#drawn || now - this.#drawnAt >= 100) {
      this.#write(`\r${this.line()}\x1b[K${last ? '\n' : ''}`);
      this.#drawnAt = now;
      this.#drawn = !last;
    }
  }

  /** Moves off the rewritten line before anything else is printed. */
  #clear(): void {
    if (this.#tty && this.#drawn) this.#write('\r\x1b[K');
    this.#drawn = false;
  }

  /** Ends the rewritten line when the import stops early. */
  end(): void {
    if (this.#tty && this.#drawn) this.#write('\n');
    this.#drawn = false;
  }
}

export interface RowError {
  row: number;
  commonId: string | null;
  /** Every problem of the row, joined with "; ". */
  error: string;
  problems: Array<{ code: string; message: string; field?: string }>;
}

/**
 * Sends the rows to the server one at a time. A row the server refuses is reported on stderr
 * ("row N: reason") and the rest go on; progress as ImportProgress shows it. `check` finds every
 * problem of a row before it is sent; a row with any is not sent.
 */
export async function sendRows<T>(
  rows: CsvRow[],
  verb: string,
  send: (row: CsvRow, index: number) => Promise<T>,
  check: (row: CsvRow, index: number) => RowError['problems'] = () => [],
): Promise<{ done: T[]; errors: RowError[] }> {
  const done: T[] = [];
  const errors: RowError[] = [];
  const progress = new ImportProgress(verb, rows.length);
  const refuse = (row: CsvRow, problems: RowError['problems']) => {
    errors.push({ row: row.line, commonId: row.fields.common_id || null, error: problems.map((p) => p.message).join('; '), problems });
    progress.failed(
      row.line,
      problems.map((p) => p.message),
    );
  };
  try {
    for (const [index, row] of rows.entries()) {
      const problems = check(row, index);
      if (problems.length) {
        refuse(row, problems);
        continue;
      }
      try {
        done.push(await send(row, index));
        progress.succeeded();
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        refuse(row, [{ code: error.code, message: error.message }]);
      }
    }
  } finally {
    progress.end();
  }
  return { done, errors };
}
