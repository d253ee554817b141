import { formatDate, formatDateTime } from '../i18n/i18n.ts';

/** Everything the CLI prints goes through here: results on stdout, messages on stderr. */

export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function err(text: string): void {
  process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

/**
 * A failure with --json: one JSON object on one line of stderr, in the admin API's form
 * ({"error": code, "error_description": text}), so that a script reads failures the way it reads
 * the API's; stdout carries results only, and the exit status still says which it was.
 */
export function printJsonError(code: string, description: string): void {
  err(JSON.stringify({ error: code, error_description: description }));
}

/** An instant as the admin API gives it: ISO 8601 with the university's offset (src/admin/admin-api.ts). */
const ZONED_INSTANT = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?([+-]\d{2}:\d{2})$/;

/** A calendar day (an education pass): no time, so no zone. */
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * An instant from the admin API as operators read it, in the university's time zone, whose offset
 * the server wrote into the value: `31 Mar 2027, 09:30`, or `31 Mar 2027` for the start of a day
 * (a date an operator gave, such as a revocation on 2027-03-31) and for a calendar day. Anything
 * else is shown as it is.
 */
export function when(value: string | null | undefined, locale = CLI_LOCALE): string {
  if (value && DAY.test(value)) return formatDate(locale, value, 'UTC');
  const match = value ? ZONED_INSTANT.exec(value) : null;
  if (!match) return value || '-';
  const [, , time, offset] = match;
  const format = time === '00:00:00' && !value!.includes('.') ? formatDate : formatDateTime;
  return format(locale, value!, offset!);
}

const show = (value: unknown): string => {
  if (value === null || value === undefined || value === '') return '-';
  if (typeof value === 'string' && (ZONED_INSTANT.test(value) || DAY.test(value))) return when(value);
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (Array.isArray(value)) return value.length ? value.join(', ') : '-';
  return String(value);
};

/** "Label:  value" lines with the values aligned. */
export function printFields(fields: ReadonlyArray<readonly [string, unknown]>): void {
  const width = Math.max(...fields.map(([label]) => label.length)) + 2;
  out(fields.map(([label, value]) => `${`${label}:`.padEnd(width)}${show(value)}`).join('\n'));
}

/** Aligned columns under a header; `empty` is printed instead when there are no rows. */
export function printTable(header: readonly string[], rows: ReadonlyArray<readonly unknown[]>, empty: string): void {
  if (!rows.length) {
    out(empty);
    return;
  }
  const cells = [header, ...rows.map((row) => row.map(show))];
  const widths = header.map((_, i) => Math.max(...cells.map((row) => String(row[i]).length)));
  out(cells.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : String(cell).padEnd(widths[i]!))).join('  ')).join('\n'));
}

/** One CSV line (RFC 4180 quoting): the same writer as the console's reports. */
export { csvLine } from '../shared/csv-table.ts';

/**
 * The operator's language for help texts: Japanese where the locale says so (LC_ALL, then
 * LC_MESSAGES, then LANG, as POSIX orders them), English otherwise.
 */
export const CLI_LOCALE: 'en' | 'ja' = /^ja/i.test(process.env.LC_ALL || process.env.LC_MESSAGES || process.env.LANG || '') ? 'ja' : 'en';
