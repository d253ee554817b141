import type { ParseArgsOptionsConfig } from 'node:util';
import type { ClientView } from '../../client/client.service.ts';
import type { OptionReader } from '../args.ts';
import type { Command, Group, RunContext } from '../command.ts';
import { out, printFields, printTable } from '../output.ts';
import { COMMON_ID_PATTERN } from '../../account/common-id.ts';

/** What creating or updating a client answers; clientSecret is set only when one was made. */
interface ClientResult {
  clientId: string;
  clientSecret: string | null;
  client: ClientView;
}

const enc = encodeURIComponent;

const CLIENT_OPTIONS = {
  name: { type: 'string' },
  'redirect-uri': { type: 'string', multiple: true },
  public: { type: 'boolean' },
  'first-party': { type: 'boolean' },
  pairwise: { type: 'boolean' },
  'post-logout-uri': { type: 'string', multiple: true },
  'backchannel-logout-uri': { type: 'string' },
  'max-password-length': { type: 'string' },
  'require-mfa': { type: 'boolean' },
  'mfa-max-age': { type: 'string' },
  'legacy-password': { type: 'boolean' },
  'client-credentials': { type: 'boolean' },
  'allow-affiliation': { type: 'string' },
  'allow-status': { type: 'string' },
  'require-education': { type: 'boolean' },
  salvage: { type: 'boolean' },
  listed: { type: 'boolean' },
  description: { type: 'string' },
  homepage: { type: 'string' },
  'mfa-warning-from': { type: 'string' },
  'mfa-required-from': { type: 'string' },
} as const satisfies ParseArgsOptionsConfig;

const UPDATE_OPTIONS = {
  ...CLIENT_OPTIONS,
  'no-public': { type: 'boolean' },
  'no-first-party': { type: 'boolean' },
  'no-pairwise': { type: 'boolean' },
  'no-post-logout-uri': { type: 'boolean' },
  'no-backchannel-logout-uri': { type: 'boolean' },
  'no-max-password-length': { type: 'boolean' },
  'no-require-mfa': { type: 'boolean' },
  'no-mfa-max-age': { type: 'boolean' },
  'no-legacy-password': { type: 'boolean' },
  'no-client-credentials': { type: 'boolean' },
  'no-require-education': { type: 'boolean' },
  'no-salvage': { type: 'boolean' },
  'no-listed': { type: 'boolean' },
  'allow-account': { type: 'string', multiple: true },
  'deny-account': { type: 'string', multiple: true },
  'unlist-account': { type: 'string', multiple: true },
  'rotate-secret': { type: 'boolean' },
} as const satisfies ParseArgsOptionsConfig;

const CLIENT_HELP = [
  '  --name NAME                    the name people see on the consent page',
  '  --redirect-uri URI             a redirect URI (repeat for more; https, or http on localhost)',
  '  --public                       a public client (PKCE, no secret), such as a mobile app',
  '  --first-party                  a university service: no consent page',
  '  --pairwise                     a different subject identifier per client (privacy)',
  '  --post-logout-uri URI          a post-logout redirect URI (repeat for more)',
  '  --backchannel-logout-uri URI   where to send back-channel logout tokens',
  '  --max-password-length N        the longest password this service accepts (8 to 1024)',
  '  --require-mfa                  everyone signing in here must show a second factor',
  '  --mfa-max-age SECONDS          ask for the second factor again after this long (60 or more)',
  '  --legacy-password              accept the OAuth password grant (app passwords for MFA accounts)',
  '  --client-credentials           a back-end service: may get access tokens for itself',
  '  --allow-affiliation A,B        only these affiliations may sign in here ("any" for all)',
  '  --allow-status S,T             account statuses allowed here (default: active)',
  "  --require-education            only people who passed this year's security education",
  '  --salvage                      a data-salvage service: revoked accounts reach it through identity verification for a while',
  '  --listed                       show it in the public service directory (/services)',
  '  --description TEXT             its description there',
  '  --homepage URL                 its link there',
  '  --mfa-warning-from DATE        from this date people without MFA are reminded here',
  '  --mfa-required-from DATE       from this date MFA is required here (dates are midnight in Japan)',
];

const MAX_PASSWORD_LENGTH = 'max-password-length';

/**
 * The admin API's client fields from the options given; absent options stay absent, so that an
 * update changes only what was asked for.
 */
function clientFields(o: OptionReader): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    name: o.string('name'),
    redirectUris: o.list('redirect-uri'),
    postLogoutRedirectUris: o.list('post-logout-uri') ?? (o.flag('no-post-logout-uri') ? [] : undefined),
    backchannelLogoutUri: o.string('backchannel-logout-uri') ?? (o.flag('no-backchannel-logout-uri') ? null : undefined),
    public: o.toggle('public'),
    firstParty: o.toggle('first-party'),
    pairwise: o.toggle('pairwise'),
    maxPasswordLength: o.integer(MAX_PASSWORD_LENGTH, 8, 1024) ?? (o.flag(`no-${MAX_PASSWORD_LENGTH}`) ? null : undefined),
    requireMfa: o.toggle('require-mfa'),
    mfaMaxAge: o.integer('mfa-max-age', 60, 31_536_000) ?? (o.flag('no-mfa-max-age') ? null : undefined),
    legacyPassword: o.toggle('legacy-password'),
    clientCredentials: o.toggle('client-credentials'),
    allowedAffiliations: commaList(o, 'allow-affiliation', true),
    allowedStatuses: commaList(o, 'allow-status', false),
    requireEducation: o.toggle('require-education'),
    salvage: o.toggle('salvage'),
    listed: o.toggle('listed'),
    description: o.string('description'),
    homepageUrl: o.string('homepage'),
    mfaWarningFrom: o.date('mfa-warning-from'),
    mfaRequiredFrom: o.date('mfa-required-from'),
  };
  for (const [option, negation] of [
    ['post-logout-uri', 'no-post-logout-uri'],
    ['backchannel-logout-uri', 'no-backchannel-logout-uri'],
    [MAX_PASSWORD_LENGTH, `no-${MAX_PASSWORD_LENGTH}`],
    ['mfa-max-age', 'no-mfa-max-age'],
  ]) {
    if (o.values[option] !== undefined && o.flag(negation!)) o.fail(`--${option} and --${negation} contradict each other`);
  }
  if (fields.name !== undefined && !String(fields.name).trim()) o.fail('--name must not be empty');
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}

/** "a,b" as a list; "any" as null where that means "no restriction". */
function commaList(o: OptionReader, name: string, anyAllowed: boolean): string[] | null | undefined {
  const raw = o.string(name);
  if (raw === undefined) return undefined;
  if (anyAllowed && raw.trim() === 'any') return null;
  const list = raw
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  if (list.length === 0) o.fail(`--${name} needs at least one value`);
  return list;
}

/** A client as `client show` gets it: with its explicit account lists. */
type ShownClient = ClientView & { accountRules?: Array<{ commonId: string; effect: string }> };

function printClient(c: ShownClient): void {
  printFields([
    ['Client ID', c.clientId],
    ['Name', c.name],
    ['Type', c.public ? 'public (PKCE, no secret)' : 'confidential'],
    ['First party', c.firstParty],
    ['Subject type', c.pairwise ? 'pairwise' : 'public'],
    ['Redirect URIs', c.redirectUris],
    ['Post-logout URIs', c.postLogoutRedirectUris],
    ['Back-channel logout', c.backchannelLogoutUri],
    ['Max password length', c.maxPasswordLength],
    ['Requires MFA', c.requireMfa],
    ['MFA max age (s)', c.mfaMaxAge],
    ['Password grant', c.legacyPassword],
    ['Client credentials', c.clientCredentials],
    ['Allowed affiliations', c.allowedAffiliations ?? 'any'],
    ['Allowed statuses', c.allowedStatuses],
    ['Requires education', c.requireEducation],
    ['Data salvage', c.salvage],
    ['Listed in /services', c.listed],
    ['Description', c.description],
    ['Homepage', c.homepageUrl],
    ['MFA warning from', c.mfaWarningFrom],
    ['MFA required from', c.mfaRequiredFrom],
    ...(c.accountRules?.length ? [['Account lists', c.accountRules.map((r) => `${r.effect} ${r.commonId}`)] as [string, unknown]] : []),
    ['Created', c.createdAt],
    ['Updated', c.updatedAt],
  ]);
}

function printSecret(result: ClientResult): void {
  if (result.clientSecret) out(`Client secret: ${result.clientSecret}\n(shown only now: put it in the relying party's configuration)`);
}

function clientIdArgument(ctx: RunContext): string {
  const id = ctx.positionals[0]!;
  if (!id.trim() || id.length > 200) ctx.options.fail('the client ID must be 1 to 200 characters');
  return id;
}

const create: Command = {
  name: 'create',
  synopsis:
    '--name NAME --redirect-uri URI [--redirect-uri URI ...] [--public] [--first-party] [--pairwise] [--post-logout-uri URI ...] [--backchannel-logout-uri URI] [--max-password-length N] [--require-mfa] [--mfa-max-age SECONDS] [--legacy-password] [--client-credentials] [--allow-affiliation A,B] [--allow-status S,T] [--require-education] [--salvage]',
  summary: 'Register a relying party.',
  optionHelp: CLIENT_HELP,
  notes: 'With --json it prints {"clientId": ..., "clientSecret": ...} (clientSecret is null for a public client). The secret is shown once.',
  options: CLIENT_OPTIONS,
  async run(ctx) {
    ctx.options.required('name');
    if (!ctx.options.list('redirect-uri')?.length) ctx.options.fail('missing --redirect-uri');
    const result = await (await ctx.connect()).post<ClientResult>('/clients', clientFields(ctx.options));
    ctx.result({ clientId: result.clientId, clientSecret: result.clientSecret }, () => {
      out(`Registered client ${result.clientId} (${result.client.name}).`);
      if (result.client.public) out('It is a public client: no secret, it must use PKCE.');
      printSecret(result);
    });
  },
};

const show: Command = {
  name: 'show',
  synopsis: 'ID',
  summary: 'Show a relying party (never its secret).',
  positionals: ['ID'],
  async run(ctx) {
    const client = await (await ctx.connect()).get<ClientView>(`/clients/${enc(clientIdArgument(ctx))}`);
    ctx.result(client, () => printClient(client));
  },
};

const list: Command = {
  name: 'list',
  synopsis: '',
  summary: 'List the relying parties.',
  async run(ctx) {
    const { clients } = await (await ctx.connect()).get<{ clients: ClientView[] }>('/clients');
    ctx.result(clients, () =>
      printTable(
        ['CLIENT ID', 'TYPE', 'FIRST PARTY', 'NAME'],
        clients.map((c) => [c.clientId, c.public ? 'public' : 'confidential', c.firstParty, c.name]),
        'no clients',
      ),
    );
  },
};

const update: Command = {
  name: 'update',
  synopsis:
    'ID [options of create] [--no-first-party] [--no-pairwise] [--no-public] [--no-post-logout-uri] [--no-backchannel-logout-uri] [--no-max-password-length] [--no-require-mfa] [--no-mfa-max-age] [--no-legacy-password] [--no-client-credentials] [--no-require-education] [--no-salvage] [--allow-account ID] [--deny-account ID] [--unlist-account ID] [--rotate-secret]',
  summary: 'Change a relying party: only the options given change; --redirect-uri and --post-logout-uri replace the lists.',
  optionHelp: [
    ...CLIENT_HELP,
    '  --no-first-party, --no-pairwise, --no-public, --no-require-mfa, --no-legacy-password, --no-client-credentials, --no-require-education, --no-salvage   turn the setting off',
    '  --allow-account ID, --deny-account ID, --unlist-account ID   the explicit lists (repeatable; deny wins)',
    '  --no-post-logout-uri, --no-backchannel-logout-uri, --no-max-password-length, --no-mfa-max-age   remove the setting',
    '  --rotate-secret                a new client secret (printed once; the old one stops working)',
  ],
  notes: 'With --json it prints {"clientId", "clientSecret", "client"}; clientSecret is null unless a new secret was made.',
  positionals: ['ID'],
  options: UPDATE_OPTIONS,
  async run(ctx) {
    const id = clientIdArgument(ctx);
    const changes = clientFields(ctx.options);
    if (ctx.options.flag('rotate-secret')) changes.rotateSecret = true;
    const listed: Array<[string, 'allow' | 'deny' | null]> = [
      ...(ctx.options.list('allow-account') ?? []).map((c): [string, 'allow'] => [c, 'allow']),
      ...(ctx.options.list('deny-account') ?? []).map((c): [string, 'deny'] => [c, 'deny']),
      ...(ctx.options.list('unlist-account') ?? []).map((c): [string, null] => [c, null]),
    ];
    for (const [commonId] of listed) if (!COMMON_ID_PATTERN.test(commonId)) ctx.options.fail(`"${commonId}" is not a Common ID (10 digits)`);
    if (!Object.keys(changes).length && !listed.length) ctx.options.fail('nothing to change: give at least one option');
    const api = await ctx.connect();
    let result: ClientResult | undefined;
    if (Object.keys(changes).length) result = await api.patch<ClientResult>(`/clients/${enc(id)}`, changes);
    for (const [commonId, effect] of listed) {
      if (effect) await api.post(`/clients/${enc(id)}/accounts`, { commonId, effect });
      else await api.delete(`/clients/${enc(id)}/accounts/${enc(commonId)}`);
    }
    const shown = result ?? { clientId: id, clientSecret: null, client: await api.get<ClientView>(`/clients/${enc(id)}`) };
    ctx.result(shown, () => {
      out(`Updated client ${shown.clientId}.`);
      printSecret(shown);
    });
  },
};

const remove: Command = {
  name: 'delete',
  synopsis: 'ID',
  summary: 'Delete a relying party; it can no longer sign anyone in.',
  positionals: ['ID'],
  async run(ctx) {
    const id = clientIdArgument(ctx);
    await (await ctx.connect()).delete(`/clients/${enc(id)}`);
    ctx.result({ clientId: id, deleted: true }, () => out(`Deleted client ${id}.`));
  },
};

export const clientGroup: Group = {
  name: 'client',
  summary: 'Manage relying parties (OpenID Connect clients): create, show, list, update, delete.',
  commands: [create, show, list, update, remove],
};
