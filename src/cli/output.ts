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

const show = (value: unknown): string => {
  if (value === null || value === undefined || value === '') return '-';
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

/** One CSV line (RFC 4180 quoting). */
export function csvLine(values: readonly string[]): string {
  return values.map((v) => (/[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v)).join(',');
}

/**
 * The operator's language for help texts: Japanese where the locale says so (LC_ALL, then
 * LC_MESSAGES, then LANG, as POSIX orders them), English otherwise.
 */
export const CLI_LOCALE: 'en' | 'ja' = /^ja/i.test(process.env.LC_ALL || process.env.LC_MESSAGES || process.env.LANG || '') ? 'ja' : 'en';
