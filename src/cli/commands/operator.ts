import { COMMON_ID_PATTERN } from '../../account/common-id.ts';
import { PERSON_ROLES, ROLES } from '../../operator/permissions.ts';
import type { Command, Group, RunContext } from '../command.ts';
import { out, printTable, when } from '../output.ts';

const enc = encodeURIComponent;

const SCOPE_OPTIONS = {
  role: { type: 'string' },
  department: { type: 'string', multiple: true },
  affiliation: { type: 'string', multiple: true },
  'whole-university': { type: 'boolean' },
} as const;
const SCOPE_HELP = [
  `  --role ROLE          ${ROLES.join(', ')} (people: ${PERSON_ROLES.join(', ')})`,
  '  --department CODE    limit to a department and the units below it (repeatable; office and helpdesk roles)',
  '  --affiliation NAME   limit to an affiliation: student, faculty, staff, alumni, guest (repeatable)',
  '  --whole-university   no limit: required, on purpose, for an office or provisioning role without one',
];
const ROLE_NOTES = [
  'Roles: admin (everything), office (the help-desk tasks on the accounts of its scope), helpdesk (looks',
  'accounts up, changes nothing), auditor (the audit trail, the sign-in log and the dashboard); for API tokens',
  'only, provisioning (a student or personnel system feeding accounts over SCIM) and monitoring (metrics).',
  'Without --department or --affiliation a read-only role covers the whole university; an office or',
  'provisioning role then needs --whole-university, so that a forgotten department never grants every account.',
].join('\n');

/** The role and scope options as the admin API takes them. */
function roleBody(ctx: RunContext) {
  const role = ctx.options.required('role');
  if (!(ROLES as readonly string[]).includes(role)) ctx.options.fail(`--role must be one of ${ROLES.join(', ')}`);
  return { role, departments: ctx.options.list('department') ?? [], affiliations: ctx.options.list('affiliation') ?? [], ...(ctx.options.flag('whole-university') ? { wholeUniversity: true } : {}) };
}

const commonIdArgument = (ctx: RunContext): string => {
  const id = ctx.positionals[0]!;
  if (!COMMON_ID_PATTERN.test(id)) ctx.options.fail(`the Common ID must be exactly 10 digits, got "${id}"`);
  return id;
};

const scopeText = (departments: string[], affiliations: string[]) => [departments.join(','), affiliations.join(',')].filter(Boolean).join(' / ') || 'whole university';

interface TokenJson {
  id: number;
  name: string;
  role: string;
  departments: string[];
  affiliations: string[];
  createdBy: string | null;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

const tokenCreate: Command = {
  name: 'token-create',
  synopsis: '--name NAME --role ROLE [--department CODE ...] [--affiliation NAME ...] [--days N]',
  summary: 'Make an API token with a role and a scope; it is shown once.',
  optionHelp: ['  --name NAME          what the token is for (shown in the audit trail as operator:NAME)', ...SCOPE_HELP, '  --days N             days until it expires (1-366, default 90)'],
  options: { name: { type: 'string' }, days: { type: 'string' }, ...SCOPE_OPTIONS },
  notes: ROLE_NOTES,
  async run(ctx) {
    const days = ctx.options.string('days');
    if (days !== undefined && !/^\d{1,3}$/.test(days)) ctx.options.fail('--days must be a whole number of days from 1 to 366');
    const created = await (await ctx.connect()).post<{ token: string; name: string; role: string; expiresAt: string }>('/operators/tokens', {
      name: ctx.options.required('name'),
      ...roleBody(ctx),
      ...(days === undefined ? {} : { expiresInDays: Number(days) }),
    });
    ctx.result(created, () => {
      out(created.token);
      out(`(${created.role} token "${created.name}", expires ${when(created.expiresAt)}; it is shown only now)`);
    });
  },
};

const tokenList: Command = {
  name: 'token-list',
  synopsis: '',
  summary: 'List the API tokens: role, scope, expiry, last use.',
  async run(ctx) {
    const { tokens } = await (await ctx.connect()).get<{ tokens: TokenJson[] }>('/operators/tokens');
    ctx.result(tokens, () =>
      printTable(
        ['ID', 'NAME', 'ROLE', 'SCOPE', 'EXPIRES', 'LAST USED', 'STATE'],
        tokens.map((t) => [
          String(t.id),
          t.name,
          t.role,
          scopeText(t.departments, t.affiliations),
          t.expiresAt ? when(t.expiresAt) : 'never',
          t.lastUsedAt ? when(t.lastUsedAt) : '-',
          t.revokedAt ? 'revoked' : 'live',
        ]),
        'no tokens',
      ),
    );
  },
};

const tokenRevoke: Command = {
  name: 'token-revoke',
  synopsis: 'ID',
  summary: 'Revoke an API token (by the id token-list shows); it stops working at once.',
  positionals: ['ID'],
  async run(ctx) {
    const id = ctx.positionals[0]!;
    if (!/^\d{1,9}$/.test(id)) ctx.options.fail(`the token id is a number, got "${id}"`);
    await (await ctx.connect()).delete(`/operators/tokens/${id}`);
    ctx.result({ id: Number(id), revoked: true }, () => out(`Token ${id} is revoked.`));
  },
};

const grant: Command = {
  name: 'grant',
  synopsis: 'ID --role ROLE [--department CODE ...] [--affiliation NAME ...]',
  summary: 'Let a person use the web console (/console) with a role and a scope.',
  positionals: ['ID'],
  optionHelp: SCOPE_HELP,
  options: SCOPE_OPTIONS,
  notes: `${ROLE_NOTES}\nThe console asks for a security key or passkey: the person needs one on their security page.`,
  async run(ctx) {
    const id = commonIdArgument(ctx);
    const result = await (await ctx.connect()).put<{ commonId: string; name: string; role: string }>(`/operators/people/${enc(id)}`, roleBody(ctx));
    ctx.result(result, () => out(`${result.commonId} (${result.name}) may use the console as ${result.role}.`));
  },
};

const withdraw: Command = {
  name: 'withdraw',
  synopsis: 'ID',
  summary: "Take a person's console role away.",
  positionals: ['ID'],
  async run(ctx) {
    const id = commonIdArgument(ctx);
    await (await ctx.connect()).delete(`/operators/people/${enc(id)}`);
    ctx.result({ commonId: id, withdrawn: true }, () => out(`${id} no longer has a console role.`));
  },
};

const people: Command = {
  name: 'list',
  synopsis: '',
  summary: 'List the people with console roles.',
  async run(ctx) {
    const result = await (await ctx.connect()).get<{
      people: Array<{ commonId: string; name: string; role: string; departments: string[]; affiliations: string[]; grantedBy: string; grantedAt: string }>;
    }>('/operators/people');
    ctx.result(result.people, () =>
      printTable(
        ['COMMON ID', 'NAME', 'ROLE', 'SCOPE', 'GRANTED BY', 'SINCE'],
        result.people.map((p) => [p.commonId, p.name, p.role, scopeText(p.departments, p.affiliations), p.grantedBy, when(p.grantedAt)]),
        'nobody has a console role',
      ),
    );
  },
};

export const operatorGroup: Group = {
  name: 'operator',
  summary: 'Operators: console roles of people, and API tokens with a role and a scope.',
  commands: [grant, withdraw, people, tokenCreate, tokenList, tokenRevoke],
};
