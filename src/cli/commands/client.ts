import fs from 'node:fs/promises';
import type { ParseArgsOptionsConfig } from 'node:util';
import { SETTING_ENTRIES, mayLackRedirectUris, settingEntries, type ClientView, type Protocol, type Setting, type SettingType, type Text } from '../../client/client-settings.ts';
import { CliError, type OptionReader } from '../args.ts';
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

/**
 * Settings whose value can be removed or turned off on update (--no-option). A service provider
 * cannot be without its metadata: --metadata replaces it, nothing removes it.
 */
const clearable = (type: SettingType) => type.kind !== 'choice' && type.kind !== 'list' && type.kind !== 'saml-metadata' && !(type.kind === 'text' && !type.nullable);

/** "--option VALUE" as the help and the usage line write it. */
function optionForm(setting: Setting<unknown>): string {
  const { type } = setting;
  switch (type.kind) {
    case 'flag':
      return `--${setting.option}`;
    case 'date':
      return `--${setting.option} DATE`;
    case 'choice':
      return `--${setting.option} ${type.values.join('|')}`;
    case 'jwks':
      return `--${setting.option} FILE`;
    case 'saml-metadata':
      return `--${setting.option} FILE|URL`;
    default:
      return `--${setting.option} ${type.placeholder}`;
  }
}

type Entries = ReturnType<typeof settingEntries>;

const createOptions = (entries: Entries): ParseArgsOptionsConfig =>
  Object.fromEntries(entries.map(([, setting]) => [setting.option, setting.type.kind === 'flag' ? { type: 'boolean' } : { type: 'string', multiple: setting.type.kind === 'uris' }]));

const updateOptions = (entries: Entries, withSecret: boolean): ParseArgsOptionsConfig => ({
  ...createOptions(entries),
  ...Object.fromEntries(entries.filter(([, setting]) => clearable(setting.type)).map(([, setting]) => [`no-${setting.option}`, { type: 'boolean' }])),
  'allow-account': { type: 'string', multiple: true },
  'deny-account': { type: 'string', multiple: true },
  'unlist-account': { type: 'string', multiple: true },
  ...(withSecret ? { 'rotate-secret': { type: 'boolean' } } : {}),
});

export const UPDATE_OPTIONS = updateOptions(settingEntries('oidc'), true);

/** A help line with its text in the column the others use, or three spaces after a longer form. */
const helpLine = (form: string, text: string) => `  ${form.length < 29 ? form.padEnd(31) : `${form}   `}${text}`;

const settingsHelp = (entries: Entries) => entries.map(([, setting]) => helpLine(optionForm(setting), setting.help[locale]));

/** The help of update's own options, in the same two languages as the settings'. */
const UPDATE_HELP: Record<'off' | 'remove' | 'lists' | 'rotate', Text> = {
  off: { en: 'turn the setting off', ja: '設定をやめる' },
  remove: { en: 'remove the setting', ja: '設定を消す' },
  lists: { en: 'the explicit lists (repeatable; deny wins)', ja: '個別の許可・拒否リスト(繰り返し可。拒否が優先)' },
  rotate: { en: 'a new client secret (printed once; the old one stops working)', ja: '新しいクライアントシークレット(表示は一度だけ。古いものは使えなくなる)' },
};

const negations = (entries: Entries, flags: boolean) =>
  entries
    .filter(([, setting]) => clearable(setting.type) && (setting.type.kind === 'flag') === flags)
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

/**
 * --metadata FILE or URL: the XML as read. A URL is fetched here, by the operator's own command,
 * from an https address (or http on loopback, for an SP under development).
 */
async function readSamlMetadata(o: OptionReader, option: string, source: string): Promise<string> {
  const url = URL.parse(source);
  if (url && /^https?:$/.test(url.protocol)) {
    if (url.protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) o.fail(`--${option}: fetch metadata over https: ${source}`);
    const response = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(10_000) }).catch((error: Error & { cause?: Error }) =>
      // fetch says only "fetch failed"; the cause says why (refused, a name not found, TLS, a redirect).
      o.fail(`--${option}: cannot fetch ${source}: ${error.cause?.message ?? error.message}`),
    );
    if (!response.ok) o.fail(`--${option}: ${source} answered ${response.status}`);
    if (Number(response.headers.get('content-length') ?? 0) > REQUEST_BODY_MAX_BYTES) o.fail(`--${option}: the metadata at ${source} is larger than 64 KiB`);
    const text = await response.text();
    if (Buffer.byteLength(text) > REQUEST_BODY_MAX_BYTES) o.fail(`--${option}: the metadata at ${source} is larger than 64 KiB`);
    return text;
  }
  const stat = await fs.stat(source).catch(() => o.fail(`--${option}: cannot read ${source}`));
  if (!stat.isFile() || stat.size > REQUEST_BODY_MAX_BYTES) o.fail(`--${option}: ${source} is not a metadata file (an XML file under 64 KiB)`);
  return fs.readFile(source, 'utf8');
}

/** "a,b" as a list; "any" as null where that means "no restriction"; "none" as empty where that may be. */
function commaList(o: OptionReader, name: string, anyMeansAll: boolean, mayBeEmpty = false): string[] | null | undefined {
  const raw = o.string(name);
  if (raw === undefined) return undefined;
  if (anyMeansAll && raw.trim() === 'any') return null;
  if (mayBeEmpty && raw.trim() === 'none') return [];
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
      return commaList(o, option, type.anyMeansAll, type.mayBeEmpty);
    case 'jwks': {
      const file = o.string(option);
      return file === undefined ? off : readJwks(o, option, file);
    }
    case 'saml-metadata': {
      const source = o.string(option);
      return source === undefined ? off : readSamlMetadata(o, option, source);
    }
  }
}

/**
 * The admin API's client fields from the options given; absent options stay absent, so that an
 * update changes only what was asked for.
 */
export async function clientFields(o: OptionReader, entries: Entries = SETTING_ENTRIES): Promise<Record<string, unknown>> {
  const fields: Record<string, unknown> = {};
  for (const [key, setting] of entries) {
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
    [c.protocol === 'saml' ? 'Entity ID' : 'Client ID', c.clientId],
    ...settingEntries(c.protocol).map(([key, { shown }]): [string, unknown] => [shown.label, shown.format ? shown.format(values[key]) : values[key]]),
    ...(c.accountRules?.length ? [['Account lists', c.accountRules.map((r) => `${r.effect} ${r.commonId}`)] as [string, unknown]] : []),
    ['Created', c.createdAt],
    ['Updated', c.updatedAt],
  ];
}

/** The columns of `client list`: free text last, where its width cannot push the others apart. */
const listColumns = (entries: Entries) => entries.filter(([, setting]) => setting.shown.list).sort(([, a], [, b]) => Number(a.type.kind === 'text') - Number(b.type.kind === 'text'));

function printSecret(result: ClientResult): void {
  if (result.clientSecret) out(`Client secret: ${result.clientSecret}\n(shown only now: put it in the relying party's configuration)`);
}

function clientIdArgument(ctx: RunContext): string {
  const id = ctx.positionals[0]!;
  if (!id.trim() || id.length > 200) ctx.options.fail('the ID must be 1 to 200 characters');
  return id;
}

/** What differs between the OIDC clients' commands and the SAML service providers'. */
interface SystemKind {
  protocol: Protocol;
  group: string;
  /** "client", "service provider": the word in messages. */
  noun: string;
  summaries: Record<'group' | 'create' | 'show' | 'list' | 'update' | 'delete', string>;
  /** Options create needs besides --name, as the synopsis writes them. */
  required: string[];
  checkCreate: (ctx: RunContext, fields: Record<string, unknown>) => void;
  createNotes: string;
}

/** The create, show, list, update and delete commands of one kind of system, driven by its settings. */
function systemGroup(kind: SystemKind): Group {
  const entries = settingEntries(kind.protocol);
  const help = settingsHelp(entries);
  const oidc = kind.protocol === 'oidc';
  const updateOptionsOfKind = updateOptions(entries, oidc);
  const columns = listColumns(entries);
  const ofKind = (c: ClientView) => c.protocol === kind.protocol;

  const create: Command = {
    name: 'create',
    synopsis: `--name NAME ${kind.required.join(' ')} ${entries
      .filter(([key, setting]) => key !== 'name' && !kind.required.some((form) => form.startsWith(`--${setting.option} `)))
      .map(([, setting]) => `[${optionForm(setting)}${setting.type.kind === 'uris' ? ' ...' : ''}]`)
      .join(' ')}`,
    summary: kind.summaries.create,
    optionHelp: help,
    notes: kind.createNotes,
    options: createOptions(entries),
    async run(ctx) {
      ctx.options.required('name');
      const fields = await clientFields(ctx.options, entries);
      kind.checkCreate(ctx, fields);
      const result = await (await ctx.connect()).post<ClientResult>('/clients', { ...fields, protocol: kind.protocol });
      ctx.result({ clientId: result.clientId, clientSecret: result.clientSecret }, () => {
        out(`Registered ${kind.noun} ${result.clientId} (${result.client.name}).`);
        if (result.client.public) out('It is a public client: no secret, it must use PKCE.');
        printSecret(result);
      });
    },
  };

  const show: Command = {
    name: 'show',
    synopsis: 'ID',
    summary: kind.summaries.show,
    positionals: ['ID'],
    async run(ctx) {
      const client = await (await ctx.connect()).get<ShownClient>(`/clients/${enc(clientIdArgument(ctx))}`);
      if (!ofKind(client)) throw new CliError(`${client.clientId} is not a ${kind.noun}: see akamon ${kind.protocol === 'oidc' ? 'sp' : 'client'} show`);
      ctx.result(client, () => printFields(clientLines(client)));
    },
  };

  const list: Command = {
    name: 'list',
    synopsis: '',
    summary: kind.summaries.list,
    async run(ctx) {
      const clients = (await (await ctx.connect()).get<{ clients: ClientView[] }>('/clients')).clients.filter(ofKind);
      ctx.result(clients, () =>
        printTable(
          [kind.protocol === 'saml' ? 'ENTITY ID' : 'CLIENT ID', ...columns.map(([, setting]) => setting.shown.list!.header)],
          clients.map((c) => {
            const values = c as unknown as Record<string, unknown>;
            return [c.clientId, ...columns.map(([key, { shown }]) => (shown.list!.format ? shown.list!.format(values[key]) : values[key]))];
          }),
          `no ${kind.noun}s`,
        ),
      );
    },
  };

  const update: Command = {
    name: 'update',
    synopsis: `ID [options of create] [${negations(entries, true).replaceAll(', ', '] [')}] [${negations(entries, false).replaceAll(', ', '] [')}] [--allow-account ID] [--deny-account ID] [--unlist-account ID]${oidc ? ' [--rotate-secret]' : ''}`,
    summary: kind.summaries.update,
    optionHelp: [
      ...help,
      helpLine(negations(entries, true), UPDATE_HELP.off[locale]),
      helpLine('--allow-account ID, --deny-account ID, --unlist-account ID', UPDATE_HELP.lists[locale]),
      helpLine(negations(entries, false), UPDATE_HELP.remove[locale]),
      ...(oidc ? [helpLine('--rotate-secret', UPDATE_HELP.rotate[locale])] : []),
    ],
    notes: `With --json it prints {"clientId", "clientSecret", "client"}${oidc ? '; clientSecret is null unless a new secret was made' : ''}.`,
    positionals: ['ID'],
    options: updateOptionsOfKind,
    async run(ctx) {
      const id = clientIdArgument(ctx);
      const changes = await clientFields(ctx.options, entries);
      if (ctx.options.flag('rotate-secret')) changes.rotateSecret = true;
      const listed: Array<[string, 'allow' | 'deny' | null]> = [
        ...(ctx.options.list('allow-account') ?? []).map((c): [string, 'allow'] => [c, 'allow']),
        ...(ctx.options.list('deny-account') ?? []).map((c): [string, 'deny'] => [c, 'deny']),
        ...(ctx.options.list('unlist-account') ?? []).map((c): [string, null] => [c, null]),
      ];
      for (const [commonId] of listed) if (!COMMON_ID_PATTERN.test(commonId)) ctx.options.fail(`"${commonId}" is not a Common ID (10 digits)`);
      if (!Object.keys(changes).length && !listed.length) ctx.options.fail('nothing to change: give at least one option');
      const api = await ctx.connect();
      const current = await api.get<ClientView>(`/clients/${enc(id)}`);
      if (!ofKind(current)) throw new CliError(`${id} is not a ${kind.noun}`);
      let result: ClientResult | undefined;
      if (Object.keys(changes).length) result = await api.patch<ClientResult>(`/clients/${enc(id)}`, changes);
      for (const [commonId, effect] of listed) {
        if (effect) await api.post(`/clients/${enc(id)}/accounts`, { commonId, effect });
        else await api.delete(`/clients/${enc(id)}/accounts/${enc(commonId)}`);
      }
      const shown = result ?? { clientId: id, clientSecret: null, client: await api.get<ClientView>(`/clients/${enc(id)}`) };
      ctx.result(shown, () => {
        out(`Updated ${kind.noun} ${shown.clientId}.`);
        printSecret(shown);
      });
    },
  };

  const remove: Command = {
    name: 'delete',
    synopsis: 'ID',
    summary: kind.summaries.delete,
    positionals: ['ID'],
    async run(ctx) {
      const id = clientIdArgument(ctx);
      const api = await ctx.connect();
      if (!ofKind(await api.get<ClientView>(`/clients/${enc(id)}`))) throw new CliError(`${id} is not a ${kind.noun}`);
      await api.delete(`/clients/${enc(id)}`);
      ctx.result({ clientId: id, deleted: true }, () => out(`Deleted ${kind.noun} ${id}.`));
    },
  };

  return { name: kind.group, summary: kind.summaries.group, commands: [create, show, list, update, remove] };
}

export const clientGroup = systemGroup({
  protocol: 'oidc',
  group: 'client',
  noun: 'client',
  summaries: {
    group: 'Manage relying parties (OpenID Connect clients) and APIs: create, show, list, update, delete.',
    create: 'Register a relying party, or an API (--resource-server URI, no redirect URI needed).',
    show: 'Show a relying party (never its secret).',
    list: 'List the relying parties.',
    update: 'Change a relying party: only the options given change; --redirect-uri and --post-logout-uri replace the lists.',
    delete: 'Delete a relying party; it can no longer sign anyone in.',
  },
  required: ['--redirect-uri URI [--redirect-uri URI ...]'],
  checkCreate(ctx, fields) {
    if (!(fields.redirectUris as string[] | undefined)?.length && !mayLackRedirectUris(fields))
      ctx.options.fail('missing --redirect-uri (an API takes --resource-server URI, a back-end service --client-credentials, a device or command-line tool --device-flow)');
  },
  createNotes: 'With --json it prints {"clientId": ..., "clientSecret": ...} (clientSecret is null for a public or private_key_jwt client). The secret is shown once.',
});

export const spGroup = systemGroup({
  protocol: 'saml',
  group: 'sp',
  noun: 'service provider',
  summaries: {
    group: 'Manage SAML 2.0 service providers: create, show, list, update, delete.',
    create: 'Register a SAML service provider from its metadata; its entityID becomes its ID.',
    show: 'Show a SAML service provider.',
    list: 'List the SAML service providers.',
    update: 'Change a SAML service provider: only the options given change; --metadata replaces what its metadata said (same entityID).',
    delete: 'Delete a SAML service provider; it can no longer sign anyone in.',
  },
  required: ['--metadata FILE|URL'],
  checkCreate(ctx) {
    ctx.options.required('metadata');
  },
  createNotes: 'With --json it prints {"clientId": ENTITY ID, "clientSecret": null}.',
});
