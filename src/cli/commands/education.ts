import { COMMON_ID_PATTERN } from '../../account/common-id.ts';
import { ApiError } from '../admin-client.ts';
import type { Command, Group } from '../command.ts';
import { readCsvRows, sendRows } from '../csv-file.ts';
import { out, printJson, when } from '../output.ts';

interface Recorded {
  commonId: string;
  year: number;
  passedOn: string;
}

const record: Command = {
  name: 'record',
  synopsis: 'ID --year YEAR [--passed-on YYYY-MM-DD]',
  summary: "Record that an account passed an academic year's information-security education.",
  optionHelp: [
    '  --year YEAR          the academic year (the year it began, e.g. 2026 for April 2026 to March 2027)',
    '  --passed-on DATE     the day it was passed (default: today); must fall in that academic year',
  ],
  positionals: ['ID'],
  options: { year: { type: 'string' }, 'passed-on': { type: 'string' } },
  async run(ctx) {
    const id = ctx.positionals[0]!;
    if (!COMMON_ID_PATTERN.test(id)) ctx.options.fail(`the Common ID must be exactly 10 digits, got "${id}"`);
    const year = ctx.options.integer('year', 2000, 2100) ?? ctx.options.fail('--year is required');
    const result = await (await ctx.connect()).post<Recorded>('/education', { commonId: id, year, passedOn: ctx.options.string('passed-on') });
    ctx.result(result, () => out(`${result.commonId} passed the ${result.year} education on ${when(result.passedOn)}.`));
  },
};

const importResults: Command = {
  name: 'import',
  synopsis: 'FILE.csv',
  summary: 'Record education results from a CSV file (common_id,year,passed_on).',
  positionals: ['FILE.csv'],
  notes: [
    'passed_on (YYYY-MM-DD) may be empty for today. Refused rows are reported on stderr as "row N: reason"',
    'and nothing is recorded for them; exit status 1 if any row was refused. Progress goes to stderr.',
    'With --json it prints {"recorded": [...], "errors": [{row, commonId, error}]}.',
  ].join('\n'),
  async run(ctx) {
    const rows = await readCsvRows(ctx.positionals[0]!, ctx.command, { required: ['common_id', 'year'], optional: ['passed_on'] });
    const api = await ctx.connect();
    const { done: recorded, errors } = await sendRows(rows, 'recorded', (row) => {
      const commonId = row.fields.common_id ?? '';
      if (!COMMON_ID_PATTERN.test(commonId)) throw new ApiError('invalid_common_id', 'the Common ID must be exactly 10 digits', 400);
      return api.post<Recorded>('/education', { commonId, year: Number(row.fields.year), passedOn: row.fields.passed_on || undefined });
    });
    if (ctx.json) printJson({ recorded, errors });
    else out(`Recorded ${recorded.length} of ${rows.length} result(s).`);
    if (errors.length) process.exitCode = 1;
  },
};

export const educationGroup: Group = {
  name: 'education',
  summary: 'Record information-security education results: record, import.',
  commands: [record, importResults],
};
