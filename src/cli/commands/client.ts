import fs from 'node:fs/promises';
import type { ParseArgsOptionsConfig } from 'node:util';
import { SETTING_ENTRIES, mayLackRedirectUris, type ClientView, type Setting, type SettingType, type Text } from '../../client/client-settings.ts';
import type { OptionReader } from '../args.ts';
import type { Command, Group, RunContext } from '../command.ts';
import { CLI_LOCALE, out, printFields, printTable } from '../output.ts';
import { COMMON_ID_PATTERN } from '../../account/common-id.ts';
import { REQUEST_BODY_MAX_BYTES } from '../../config/defaults.ts';

/** What creating or updating a client answers; clientSecret is set only when one was made. */
interface ClientResult {
  clientId: string;
  clientSecret: string | null;
  client: ClientView;
}

const enc = encodeURIComponent;

const locale = CLI_LOCALE;

/** Settings whose value can be removed or turned off on update (--no-option). */
const clearable = (type: SettingType) => type.kind !== 'choice' && type.kind !== 'list' && !(type.kind === 'text' && !type.nullable);

/** "--option VALUE" as the help and the usage line write it. */
function optionForm(setting: Setting<unknown>): string {
  const { type } = setting;
  switch (type.kind) {
    case 'flag':
      return `--${setting.option}`;
    case 'date':
      return `--${setting.option} DATE`;
    case 'choice':
      return `--${setting.option} METHOD`;
    case 'jwks':
      return `--${setting.option} FILE`;
    default:
      return `--${setting.option} ${type.placeholder}`;
  }
}

const CLIENT_OPTIONS: ParseArgsOptionsConfig = Object.fromEntries(
  SETTING_ENTRIES.map(([, setting]) => [setting.option, setting.type.kind === 'flag' ? { type: 'boolean' } : { type: 'string', multiple: setting.type.kind === 'uris' }]),
);

export const UPDATE_OPTIONS: ParseArgsOptionsConfig = {
  ...CLIENT_OPTIONS,
  ...Object.fromEntries(SETTING_ENTRIES.filter(([, setting]) => clearable(setting.type)).map(([, setting]) => [`no-${setting.option}`, { type: 'boolean' }])),
  'allow-account': { type: 'string', multiple: true },
  'deny-account': { type: 'string', multiple: true },
  'unlist-account': { type: 'string', multiple: true },
  'rotate-secret': { type: 'boolean' },
};

/** A help line with its text in the column the others use, or three spaces after a longer form. */
const helpLine = (form: string, text: string) => `  ${form.length < 29 ? form.padEnd(31) : `${form}   `}${text}`;

const CLIENT_HELP = SETTING_ENTRIES.map(([, setting]) => helpLine(optionForm(setting), setting.help[locale]));

/** The help of update's own options, in the same two languages as the settings'. */
const UPDATE_HELP: Record<'off' | 'remove' | 'lists' | 'rotate', Text> = {
  off: { en: 'turn the setting off', ja: '設定をやめる' },
  remove: { en: 'remove the setting', ja: '設定を消す' },
  lists: { en: 'the explicit lists (repeatable; deny wins)', ja: '個別の許可・拒否リスト(繰り返し可。拒否が優先)' },
  rotate: { en: 'a new client secret (printed once; the old one stops working)', ja: '新しいクライアントシークレット(表示は一度だけ。古いものは使えなくなる)' },
};

const negations = (flags: boolean) =>
  SETTING_ENTRIES.filter(([, setting]) => clearable(setting.type) && (setting.type.kind === 'flag') === flags)
    .map(([, setting]) => `--no-${setting.option}`)
    .join(', ');

/** Reads --jwks FILE: a usage error for a file that is missing, too large or not JSON. */
async function readJwks(o: OptionReader, option: string, file: string): Promise<unknown> {
  const stat = await fs.stat(file).catch(() => o.fail(`--${option}: cannot read ${file}`));
  if (!stat.isFile() || stat.size > REQUEST_BODY_MAX_BYTES) o.fail(`--${option}: ${file} is not a key set file (a JSON file under 64 KiB)`);
  try {
    return JSON.parse(await fs.readFile(file, 'utf8'));
  } catch {
    return o.fail(`--${option}: ${file} is not JSON`);
  }
}

/** "a,b" as a list; "any" as null where that means "no restriction". */
function commaList(o: OptionReader, name: string, anyMeansAll: boolean): string[] | null | undefined {
  const raw = o.string(name);
  if (raw === undefined) return undefined;
  if (anyMeansAll && raw.trim() === 'any') return null;
  const list = raw
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  if (list.length === 0) o.fail(`--${name} needs at least one value`);
  return list;
}

/** One setting's value from the options: undefined when neither --option nor --no-option was given. */
async function optionValue(o: OptionReader, setting: Setting<unknown>): Promise<unknown> {
  const { option, type } = setting;
  const cleared = clearable(type) && o.flag(`no-${option}`);
  if (type.kind !== 'flag' && cleared && o.values[option] !== undefined) o.fail(`--${option} and --no-${option} contradict each other`);
  const off = cleared ? structuredClone(setting.default) : undefined;
  switch (type.kind) {
    case 'flag':
      return o.toggle(option);
    case 'text': {
      const value = o.string(option);
      if (value !== undefined && !type.nullable && !value.trim()) o.fail(`--${option} must not be empty`);
      return value ?? off;
    }
    case 'integer':
      return o.integer(option, type.min, type.max) ?? off;
    case 'uri':
      return o.string(option) ?? off;
    case 'uris':
      return o.list(option) ?? off;
    case 'date':
      return o.date(option) ?? off;
    case 'choice':
      return o.oneOf(option, type.values);
    case 'list':
      return commaList(o, option, type.anyMeansAll);
    case 'jwks': {
      const file = o.string(option);
      return file === undefined ? off : readJwks(o, option, file);
    }
  }
}

/**
 * The admin API's client fields from the options given; absent options stay absent, so that an
 * update changes only what was asked for.
 */
export async function clientFields(o: OptionReader): Promise<Record<string, unknown>> {
  const fields: Record<string, unknown> = {};
  for (const [key, setting] of SETTING_ENTRIES) {
    const value = await optionValue(o, setting);
    if (value !== undefined) fields[key] = value;
  }
  return fields;
}

/** A client as `client show` gets it: with its explicit account lists. */
type ShownClient = ClientView & { accountRules?: Array<{ commonId: string; effect: string }> };

/** What `client show` prints, one line per setting in the table's order. */
export function clientLines(c: ShownClient): Array<[string, unknown]> {
  const values = c as unknown as Record<string, unknown>;
  return [
    ['Client ID', c.clientId],
    ...SETTING_ENTRIES.map(([key, { shown }]): [string, unknown] => [shown.label, shown.format ? shown.format(values[key]) : values[key]]),
    ...(c.accountRules?.length ? [['Account lists', c.accountRules.map((r) => `${r.effect} ${r.commonId}`)] as [string, unknown]] : []),
    ['Created', c.createdAt],
    ['Updated', c.updatedAt],
  ];
}

/** The columns of `client list`: free text last, where its width cannot push the others apart. */
const LIST_COLUMNS = SETTING_ENTRIES.filter(([, setting]) => setting.shown.list).sort(([, a], [, b]) => Number(a.type.kind === 'text') - Number(b.type.kind === 'text'));

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
  synopsis: `--name NAME --redirect-uri URI [--redirect-uri URI ...] ${SETTING_ENTRIES.filter(([key]) => key !== 'name' && key !== 'redirectUris')
    .map(([, setting]) => `[${optionForm(setting)}${setting.type.kind === 'uris' ? ' ...' : ''}]`)
    .join(' ')}`,
  summary: 'Register a relying party, or an API (--resource-server URI, no redirect URI needed).',
  optionHelp: CLIENT_HELP,
  notes: 'With --json it prints {"clientId": ..., "clientSecret": ...} (clientSecret is null for a public or private_key_jwt client). The secret is shown once.',
  options: CLIENT_OPTIONS,
  async run(ctx) {
    ctx.options.required('name');
    const fields = await clientFields(ctx.options);
    if (!(fields.redirectUris as string[] | undefined)?.length && !mayLackRedirectUris(fields))
      ctx.options.fail('missing --redirect-uri (an API takes --resource-server URI, a back-end service --client-credentials, a device or command-line tool --device-flow)');
    const result = await (await ctx.connect()).post<ClientResult>('/clients', fields);
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
    const client = await (await ctx.connect()).get<ShownClient>(`/clients/${enc(clientIdArgument(ctx))}`);
    ctx.result(client, () => printFields(clientLines(client)));
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
        ['CLIENT ID', ...LIST_COLUMNS.map(([, setting]) => setting.shown.list!.header)],
        clients.map((c) => {
          const values = c as unknown as Record<string, unknown>;
          return [c.clientId, ...LIST_COLUMNS.map(([key, { shown }]) => (shown.list!.format ? shown.list!.format(values[key]) : values[key]))];
        }),
        'no clients',
      ),
    );
  },
};

const update: Command = {
  name: 'update',
  synopsis: `ID [options of create] [${negations(true).replaceAll(', ', '] [')}] [${negations(false).replaceAll(', ', '] [')}] [--allow-account ID] [--deny-account ID] [--unlist-account ID] [--rotate-secret]`,
  summary: 'Change a relying party: only the options given change; --redirect-uri and --post-logout-uri replace the lists.',
  optionHelp: [
    ...CLIENT_HELP,
    helpLine(negations(true), UPDATE_HELP.off[locale]),
    helpLine('--allow-account ID, --deny-account ID, --unlist-account ID', UPDATE_HELP.lists[locale]),
    helpLine(negations(false), UPDATE_HELP.remove[locale]),
    helpLine('--rotate-secret', UPDATE_HELP.rotate[locale]),
  ],
  notes: 'With --json it prints {"clientId", "clientSecret", "client"}; clientSecret is null unless a new secret was made.',
  positionals: ['ID'],
  options: UPDATE_OPTIONS,
  async run(ctx) {
    const id = clientIdArgument(ctx);
    const changes = await clientFields(ctx.options);
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
  summary: 'Manage relying parties (OpenID Connect clients) and APIs: create, show, list, update, delete.',
  commands: [create, show, list, update, remove],
};
