import { COMMON_ID_PATTERN } from '../../account/common-id.ts';
import { checkImportRows, REVOCATION_IMPORT_COLUMNS } from '../../account/account-import.ts';
import { ApiError } from '../admin-client.ts';
import type { Command, RunContext } from '../command.ts';
import { readCsvRows, sendRows } from '../csv-file.ts';
import { out, printJson, printTable, when } from '../output.ts';
import type { AccountJson } from './account-types.ts';

const enc = encodeURIComponent;
const DATE_HELP = 'a date (YYYY-MM-DD) means 00:00 of that day in the university time zone ($AKAMON_TIME_ZONE)';

function revokePath(commonId: string): string {
  if (!COMMON_ID_PATTERN.test(commonId)) throw new ApiError('invalid_common_id', 'the Common ID must be exactly 10 digits', 400);
  return `/accounts/${enc(commonId)}/revoke`;
}

function describe(a: AccountJson): string {
  if (a.revokeAt) return `Account ${a.commonId} (${a.name}) will be revoked on ${when(a.revokeAt)}${a.revokeReason ? ` (${a.revokeReason})` : ''}.`;
  return `Account ${a.commonId} (${a.name}) is ${a.status}${a.status === 'revoked' ? '; its sessions ended' : ''}.`;
}

export const revokeCommand: Command = {
  name: 'revoke',
  synopsis: 'ID [--on DATE] [--reason TEXT] | ID --cancel',
  summary: 'Revoke an account now or on a date (graduation, end of contract); its sessions end when it happens.',
  optionHelp: [
    `  --on DATE       revoke then instead of now; ${DATE_HELP}`,
    '  --reason TEXT   why (graduation, resignation ...), kept with the account and in the audit record',
    '  --cancel        cancel a scheduled revocation',
  ],
  positionals: ['ID'],
  options: { on: { type: 'string' }, reason: { type: 'string' }, cancel: { type: 'boolean' } },
  async run(ctx: RunContext) {
    const id = ctx.positionals[0]!;
    if (!COMMON_ID_PATTERN.test(id)) ctx.options.fail(`the Common ID must be exactly 10 digits, got "${id}"`);
    const o = ctx.options;
    const api = await ctx.connect();
    if (o.flag('cancel')) {
      if (o.string('on') !== undefined || o.string('reason') !== undefined) o.fail('--cancel takes no --on or --reason');
      const account = await api.delete<AccountJson>(`/accounts/${enc(id)}/revocation`);
      ctx.result(account, () => out(`The scheduled revocation of ${account.commonId} (${account.name}) is cancelled.`));
      return;
    }
    const account = await api.post<AccountJson>(revokePath(id), { on: o.date('on'), reason: o.string('reason') });
    ctx.result(account, () => out(describe(account)));
  },
};

export const revokeImportCommand: Command = {
  name: 'revoke-import',
  synopsis: 'FILE.csv',
  summary: 'Schedule the revocation of many accounts (a graduating cohort) from a CSV file (common_id,revoke_on,reason).',
  positionals: ['FILE.csv'],
  notes: [
    `revoke_on is required (${DATE_HELP}); reason may be empty. Refused rows are reported on stderr`,
    'as "row N: problem; problem; ..." with every problem of the row, and the others are scheduled; exit status 1',
    'if any row was refused. Progress goes to stderr (on a terminal, one line rewritten in place).',
    'With --json it prints {"scheduled": [...], "errors": [{row, commonId, error, problems: [{code, message, field}]}]}.',
  ].join('\n'),
  async run(ctx) {
    const rows = await readCsvRows(ctx.positionals[0]!, ctx.command, REVOCATION_IMPORT_COLUMNS);
    // Every problem of every row is known before the first is sent (src/account/account-import.ts).
    const checked = checkImportRows('revocations', rows);
    const api = await ctx.connect();
    const { done: scheduled, errors } = await sendRows(
      rows,
      'scheduled',
      (_row, index) => {
        const { commonId, on, reason } = checked[index]!.value!;
        return api.post<AccountJson>(revokePath(commonId), { on, reason: reason ?? undefined });
      },
      (_row, index) => checked[index]!.problems,
    );
    if (ctx.json) printJson({ scheduled, errors });
    else out(`Scheduled ${scheduled.length} of ${rows.length} revocation(s).`);
    if (errors.length) process.exitCode = 1;
  },
};

export const revocationsCommand: Command = {
  name: 'revocations',
  synopsis: '[--until DATE] [--limit N] [--after ID]',
  summary: 'List accounts due for revocation, soonest first.',
  optionHelp: ['  --until DATE     only those due by then', '  --limit N        at most N accounts (1 to 1000, default 100)', '  --after ID       start after this Common ID (the next page)'],
  options: { until: { type: 'string' }, limit: { type: 'string' }, after: { type: 'string' } },
  async run(ctx) {
    const o = ctx.options;
    const { accounts } = await (await ctx.connect()).get<{ accounts: AccountJson[] }>('/revocations', { until: o.date('until'), limit: o.integer('limit', 1, 1000), after: o.string('after') });
    ctx.result(accounts, () =>
      printTable(
        ['REVOKE AT', 'COMMON ID', 'STATUS', 'REASON', 'NAME'],
        accounts.map((a) => [a.revokeAt ?? '', a.commonId, a.status, a.revokeReason ?? '', a.name]),
        'no revocations scheduled',
      ),
    );
  },
};
