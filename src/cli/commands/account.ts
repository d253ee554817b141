import { AFFILIATIONS, STATUSES, validateAccountInput } from '../../account/account.service.ts';
import { readProfile } from '../../account/account-fields.ts';
import { normalizeDepartment } from '../../account/department.ts';
import { COMMON_ID_PATTERN } from '../../account/common-id.ts';
import type { NoResetReason } from '../../account/reset-address.ts';
import { DomainError } from '../../shared/errors.ts';
import { UsageError } from '../args.ts';
import type { Command, Group, RunContext } from '../command.ts';
import { assertLetterAbsent, writeLetter } from '../letter.ts';
import { out, printFields, printTable, when } from '../output.ts';
import { importCommand } from './account-import.ts';
import type { AccountJson, IssuedJson } from './account-types.ts';
import { revocationsCommand, revokeCommand, revokeImportCommand } from './account-revocation.ts';
import { FIELD_OPTIONS, fieldHelp, fieldLines, fieldOptionValues } from './account-fields.ts';

const enc = encodeURIComponent;

/** Input checked with the server's own rules before it is sent; a violation is a UsageError. */
export function checked<T>(command: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof DomainError) throw new UsageError(error.message, command);
    throw error;
  }
}

function commonIdArgument(ctx: RunContext): string {
  const id = ctx.positionals[0]!;
  if (!COMMON_ID_PATTERN.test(id)) ctx.options.fail(`the Common ID must be exactly 10 digits, got "${id}"`);
  return id;
}

const NO_RESET: Record<NoResetReason, string> = {
  no_email: 'no email address is registered',
  university_email_untrusted: 'the university email is outside AKAMON_TRUSTED_EMAIL_DOMAINS',
  university_email_unverified: 'the university email is not verified (account update --email-verified)',
};

function resetLine(reset: AccountJson['passwordResetByEmail']): string {
  if (reset.possible) return `possible, to the ${reset.via === 'recovery_email' ? 'recovery' : 'university'} email`;
  return `not possible: ${NO_RESET[reset.reason]}`;
}

function printAccount(a: AccountJson): void {
  printFields([
    ['Common ID', a.commonId],
    ['Name', a.name],
    ['University email', a.email],
    ['Recovery email', a.recoveryEmail],
    ['Password reset by email', resetLine(a.passwordResetByEmail)],
    ...fieldLines(a as unknown as Record<string, unknown>),
    ['Affiliation', a.affiliation],
    ['Status', a.status],
    ['Must change password', a.mustChangePassword],
    ['MFA required', a.mfaRequired],
    ...(a.factors
      ? [
          ['Second factors', a.factors.length ? a.factors.map((f) => `${f.label} (${f.kind}${f.default ? ', default' : ''}, last used ${f.lastUsedAt ? when(f.lastUsedAt) : 'never'})`) : 'none'] as [
            string,
            unknown,
          ],
        ]
      : []),
    ['Password set', a.passwordSetAt],
    ...(a.identityLink !== undefined ? [['ID card linked', a.identityLink?.linkedAt ?? 'no'] as [string, unknown]] : []),
    ...(a.revokeAt ? [['Revocation scheduled', `${when(a.revokeAt)}${a.revokeReason ? ` (${a.revokeReason})` : ''}`] as [string, unknown]] : []),
    ...(a.revokedAt ? [['Revoked', `${when(a.revokedAt)}${a.revokeReason ? ` (${a.revokeReason})` : ''}`] as [string, unknown]] : []),
    ['Created', a.createdAt],
  ]);
}

/**
 * Prints a freshly issued initial password (exactly {commonId, initialPassword} with --json)
 * and then writes the letter, so the password is never lost when the letter cannot be written.
 */
async function issued(ctx: RunContext, result: IssuedJson, serverUrl: string, headline: string, letter: string | undefined): Promise<void> {
  ctx.result({ commonId: result.commonId, initialPassword: result.initialPassword }, () => {
    out(headline);
    out(`Initial password: ${result.initialPassword}`);
  });
  if (letter) {
    await writeLetter(letter, { name: result.account.name, commonId: result.commonId, password: result.initialPassword, serverUrl, issuedAt: result.account.passwordSetAt });
    if (!ctx.json) out(`Letter written to ${letter}`);
  }
}

const LETTER_HELP = '  --letter FILE    also write a printable letter (HTML, mode 0600; FILE must not exist)';

const create: Command = {
  name: 'create',
  synopsis: '--id ID --name NAME --affiliation A [--email ADDRESS] [--department CODE] [--family-name ...] [--letter FILE]',
  summary: 'Create an account with a generated initial password.',
  optionHelp: [
    '  --id ID          the Common ID: exactly 10 digits',
    '  --name NAME      the full name, as printed on the letter',
    `  --affiliation A  one of ${AFFILIATIONS.join(', ')}`,
    '  --email ADDRESS  the university-registered address (optional); password resets may go to it',
    '                   when its domain is in AKAMON_TRUSTED_EMAIL_DOMAINS',
    LETTER_HELP,
    'Optional fields (names and the department feed claims and access rules):',
    ...fieldHelp(false),
  ],
  notes: 'With --json it prints {"commonId": ..., "initialPassword": ...}. The initial password is shown once.',
  options: { id: { type: 'string' }, name: { type: 'string' }, affiliation: { type: 'string' }, email: { type: 'string' }, letter: { type: 'string' }, ...FIELD_OPTIONS },
  async run(ctx) {
    const o = ctx.options;
    const fields = fieldOptionValues(o);
    const input = checked(ctx.command, () =>
      validateAccountInput({ commonId: o.required('id'), name: o.required('name'), affiliation: o.required('affiliation'), email: o.string('email'), profile: fields }),
    );
    const letter = o.string('letter');
    if (letter) await assertLetterAbsent(letter);
    const api = await ctx.connect();
    const result = await api.post<IssuedJson>('/accounts', { commonId: input.commonId, name: input.name, affiliation: input.affiliation, email: input.email, ...fields });
    await issued(ctx, result, api.url, `Created account ${result.commonId} (${result.account.name}, ${result.account.affiliation}).`, letter);
  },
};

const show: Command = {
  name: 'show',
  synopsis: 'ID',
  summary: 'Show an account.',
  positionals: ['ID'],
  async run(ctx) {
    const id = commonIdArgument(ctx);
    const account = await (await ctx.connect()).get<AccountJson>(`/accounts/${enc(id)}`);
    ctx.result(account, () => printAccount(account));
  },
};

const list: Command = {
  name: 'list',
  synopsis: '[--status S] [--affiliation A] [--department CODE] [--limit N] [--after ID]',
  summary: 'List accounts, ordered by Common ID.',
  optionHelp: [
    `  --status S       only accounts that are ${STATUSES.join(', ')}`,
    `  --affiliation A  only ${AFFILIATIONS.join(', ')}`,
    '  --department CODE  only this department and those below it (eng takes in eng/mech)',
    '  --limit N        at most N accounts (1 to 1000, default 100)',
    '  --after ID       start after this Common ID (the next page)',
  ],
  options: { status: { type: 'string' }, affiliation: { type: 'string' }, department: { type: 'string' }, limit: { type: 'string' }, after: { type: 'string' } },
  async run(ctx) {
    const o = ctx.options;
    const department = o.string('department');
    if (department !== undefined && !normalizeDepartment(department)) o.fail('--department must be a department code such as eng or eng/mech');
    const query = { status: o.oneOf('status', STATUSES), affiliation: o.oneOf('affiliation', AFFILIATIONS), department, limit: o.integer('limit', 1, 1000), after: o.string('after') };
    const { accounts } = await (await ctx.connect()).get<{ accounts: AccountJson[] }>('/accounts', query);
    ctx.result(accounts, () =>
      printTable(
        ['COMMON ID', 'STATUS', 'AFFILIATION', 'DEPARTMENT', 'NAME'],
        accounts.map((a) => [a.commonId, a.status, a.affiliation, a.department, a.name]),
        'no accounts',
      ),
    );
  },
};

const reissue: Command = {
  name: 'reissue-password',
  synopsis: 'ID [--checked "student ID card" --by NAME] [--letter FILE]',
  summary: 'Replace the password of an account by a new initial password; every session of the account ends.',
  optionHelp: ['  --checked WHAT   how the person was identified (recorded with --by)', '  --by NAME        who checked it', LETTER_HELP],
  notes: 'With --json it prints {"commonId": ..., "initialPassword": ...}. The initial password is shown once.',
  positionals: ['ID'],
  options: { checked: { type: 'string' }, by: { type: 'string' }, letter: { type: 'string' } },
  async run(ctx) {
    const id = commonIdArgument(ctx);
    const o = ctx.options;
    const checked = o.string('checked');
    const by = o.string('by');
    if ((checked === undefined) !== (by === undefined)) o.fail('--checked and --by go together');
    const letter = o.string('letter');
    if (letter) await assertLetterAbsent(letter);
    const api = await ctx.connect();
    const result = await api.post<IssuedJson>(`/accounts/${enc(id)}/reissue-password`, checked !== undefined ? { checked, by } : undefined);
    await issued(ctx, result, api.url, `New initial password for ${result.commonId} (${result.account.name}); all of its sessions ended.`, letter);
  },
};

const update: Command = {
  name: 'update',
  synopsis: 'ID [--require-mfa | --no-require-mfa] [--department CODE] [--family-name TEXT] ...',
  summary: 'Change the fields of an account (names, department, entitlements), or require MFA at its every sign-in.',
  optionHelp: ['  --require-mfa     from the next sign-in, a second factor (the person sets one up first if needed)', '  --no-require-mfa  back to what the clients demand', ...fieldHelp(true)],
  notes: "A new department applies to the access rules at the account's next request, on every path.",
  positionals: ['ID'],
  options: { 'require-mfa': { type: 'boolean' }, 'no-require-mfa': { type: 'boolean' }, ...FIELD_OPTIONS },
  async run(ctx) {
    const id = commonIdArgument(ctx);
    const requireMfa = ctx.options.toggle('require-mfa');
    const fields = fieldOptionValues(ctx.options);
    if (requireMfa === undefined && Object.keys(fields).length === 0) ctx.options.fail('say what to change: --require-mfa, --no-require-mfa or a field such as --department');
    checked(ctx.command, () => readProfile(fields));
    const account = await (await ctx.connect()).patch<AccountJson>(`/accounts/${enc(id)}`, { requireMfa, ...fields });
    ctx.result(account, () => {
      if (Object.keys(fields).length) out(`Account ${account.commonId} updated: ${Object.keys(fields).join(', ')}.`);
      if (requireMfa !== undefined) out(`Account ${account.commonId} ${account.mfaRequired ? 'now requires' : 'no longer requires'} multi-factor authentication.`);
    });
  },
};

/** suspend, revoke, activate, unlock and reset-mfa: one POST each, answered with the account. */
const ACTIONS = [
  { name: 'suspend', summary: 'Suspend an account (it can be activated again); its sessions end.', done: 'is now suspended' },
  { name: 'activate', summary: 'Make a suspended account active again.', done: 'is now active' },
  { name: 'unlock', summary: 'Clear the failed sign-in counter of an account.', done: 'is unlocked' },
  { name: 'reset-mfa', summary: 'Remove every second factor of an account; the person sets one up again at the next sign-in.', done: 'has no second factors now' },
  { name: 'unlink-idv', summary: 'Remove the link between an account and a national ID card (the person links again from the account page).', done: 'is no longer linked to an ID card' },
] as const;

const actions: Command[] = ACTIONS.map((action) => ({
  name: action.name,
  synopsis: 'ID',
  summary: action.summary,
  positionals: ['ID'],
  async run(ctx: RunContext) {
    const id = commonIdArgument(ctx);
    const account = await (await ctx.connect()).post<AccountJson>(`/accounts/${enc(id)}/${action.name}`);
    ctx.result(account, () => out(`Account ${account.commonId} (${account.name}) ${action.done}.`));
  },
}));

export const accountGroup: Group = {
  name: 'account',
  summary: 'Manage accounts: create, import, show, list, update, reissue passwords, suspend, revoke (now or scheduled), activate, unlock, reset MFA.',
  commands: [create, importCommand, show, list, update, reissue, revokeCommand, revokeImportCommand, revocationsCommand, ...actions],
};
