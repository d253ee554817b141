import type { ParseArgsOptionsConfig } from 'node:util';
import { ACCOUNT_FIELDS, fieldFromText } from '../../account/account-fields.ts';
import { CLI_LOCALE } from '../output.ts';
import type { OptionReader } from '../args.ts';

/** The CLI side of src/account/account-fields.ts: options, help, CSV cells and `account show` lines, one per row. */

/** A flag is --name / --no-name; the others take a value. */
export const FIELD_OPTIONS: ParseArgsOptionsConfig = Object.fromEntries(
  ACCOUNT_FIELDS.flatMap(
    (field): Array<[string, { type: 'string' | 'boolean' }]> =>
      field.kind === 'flag'
        ? [
            [field.option, { type: 'boolean' }],
            [`no-${field.option}`, { type: 'boolean' }],
          ]
        : [[field.option, { type: 'string' }]],
  ),
);

const WIDTH = Math.max(...ACCOUNT_FIELDS.map((field) => field.option.length + (field.kind === 'flag' ? 5 : 2))) + 6;

/** Help lines; `clearing` adds how an update removes a value. */
export function fieldHelp(clearing: boolean): string[] {
  const lines = ACCOUNT_FIELDS.map((field) => {
    const option = field.kind === 'flag' ? `--[no-]${field.option}` : `--${field.option} ${field.kind === 'list' ? 'LIST' : 'TEXT'}`;
    return `  ${option.padEnd(WIDTH)}${field.help[CLI_LOCALE]}`;
  });
  return clearing ? [...lines, `  ${''.padEnd(WIDTH)}(an empty TEXT or LIST, such as --department "", removes the value)`] : lines;
}

/** The fields given as options, by their admin API names; a bad value is a usage error. */
export function fieldOptionValues(options: OptionReader): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const field of ACCOUNT_FIELDS) {
    if (field.kind === 'flag') {
      const on = options.toggle(field.option);
      if (on !== undefined) values[field.key] = on;
      continue;
    }
    const text = options.string(field.option);
    if (text !== undefined) values[field.key] = fieldFromText(field, text);
  }
  return values;
}

/** The CSV columns of `account import` beyond the core ones: each field's column name. */
export const FIELD_COLUMNS = ACCOUNT_FIELDS.map((field) => field.column);

/** The lines `account show` prints for the fields. */
export function fieldLines(account: Readonly<Record<string, unknown>>): Array<[string, unknown]> {
  return ACCOUNT_FIELDS.map((field) => [field.label, account[field.key]]);
}
