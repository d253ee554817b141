import { X509Certificate } from 'node:crypto';
import type { ClientTable } from '../db/schema.ts';
import { AFFILIATIONS, STATUSES } from '../account/account.service.ts';
import { CLIENT_SECRET_BYTES, HMAC_CLIENT_SECRET_BYTES } from '../config/defaults.ts';
import { DomainError } from '../shared/errors.ts';
import { cleanName } from '../shared/text.ts';
import { startOfDay } from '../shared/time-zone.ts';
import { normalizeDepartment } from '../account/department.ts';
import type { ClientRow } from './client.store.ts';
import { BINDING } from '../saml/constants.ts';
import { readSpMetadata, type SpMetadata } from '../saml/sp-metadata.ts';
import { SAML_ATTRIBUTE_NAMES } from '../saml/attributes.ts';

/**
 * The table of client settings: each setting is one row saying what it is called in the admin API
 * (its key) and on the command line (its option), its type, default, validation, help text in
 * English and Japanese, how `client show` and `client list` show it, and where it is stored (a
 * column of the `client` table, the registration oidc-provider reads, or both). The service, the
 * store mapping, the admin API, the CLI's options, help and display are all driven from here, so a
 * new setting is one row (plus a migration when it needs a column of its own).
 *
 * The rows are in two groups: what any system a person signs in to has (a SAML service provider
 * too: name, access rules, MFA, education, listing, rollout), and what only an OIDC client has.
 */

export interface Text {
  readonly en: string;
  readonly ja: string;
}

/** The provider's registration of a client (its metadata), as stored in `client.metadata`. */
type Metadata = Record<string, unknown>;

/** A JSON Web Key Set of public keys, as an operator registers one for private_key_jwt. */
interface JwkSet {
  keys: Array<Record<string, unknown>>;
}

/**
 * What kind of value a setting holds: each surface reads and writes values by their kind (the
 * admin API's JSON types, the CLI's option forms, the display), so a row only names its kind.
 */
export type SettingType =
  | { readonly kind: 'flag' }
  | { readonly kind: 'text'; readonly placeholder: string; readonly nullable: boolean }
  | { readonly kind: 'integer'; readonly placeholder: string; readonly min: number; readonly max: number }
  | { readonly kind: 'uri'; readonly placeholder: string }
  | { readonly kind: 'uris'; readonly placeholder: string }
  | { readonly kind: 'date' }
  | { readonly kind: 'choice'; readonly values: readonly string[] }
  /** A comma-separated list on the command line; "any" stands for null (no restriction) where allowed. */
  | { readonly kind: 'list'; readonly placeholder: string; readonly values: readonly string[]; readonly anyMeansAll: boolean; readonly mayBeEmpty?: boolean }
  /** A JSON document: inline in the admin API, a file on the command line. */
  | { readonly kind: 'jwks' }
  /** A SAML metadata document: its XML in the admin API, a file or URL on the command line; kept as read. */
  | { readonly kind: 'saml-metadata' };

type ColumnName = Exclude<keyof ClientTable, 'client_id' | 'client_secret_enc' | 'metadata' | 'protocol' | 'saml' | 'created_at' | 'updated_at'>;

/** The protocol a system speaks: OpenID Connect (a relying party, an API) or SAML 2.0 (a service provider). */
export type Protocol = 'oidc' | 'saml';

/**
 * Where a setting lives. A column (and optionally a part of the provider's registration too, for a
 * value the provider must see), or only the registration, read back from it.
 */
type SettingStore<T> =
  | { readonly column: ColumnName; readonly metadata?: (value: T) => Metadata }
  | { readonly metadata: (value: T) => Metadata; readonly read: (metadata: Metadata) => T }
  /** A member of a SAML service provider's registration document (the `saml` column), under the setting's key. */
  | { readonly saml: true };

/** What validation may depend on besides the value. */
interface SettingEnv {
  /** http redirect and homepage URIs are accepted (development); loopback ones always are. */
  readonly allowHttp: boolean;
  /** The university's time zone: a bare date is 00:00 there. */
  readonly timeZone: string;
  /** A registered SP's entityID: new metadata must keep it (it is the SP's name everywhere). */
  readonly entityId?: string;
}

export interface Setting<T> {
  /** The command-line option: --option, and on update --no-option where the value can be turned off or cleared. */
  readonly option: string;
  readonly type: SettingType;
  /** A new client's value, and what --no-option returns to. */
  readonly default: T;
  /** The normal form of a value an operator gave; throws a DomainError saying what is wrong. */
  readonly check: (value: T, env: SettingEnv) => T;
  readonly help: Text;
  /** Its label in `client show`, how it is printed there when not plainly, and its column in `client list`, if any. */
  readonly shown: { readonly label: string; readonly format?: (value: T) => unknown; readonly list?: { readonly header: string; readonly format?: (value: T) => unknown } };
  readonly store: SettingStore<T>;
  /** A shorthand for another setting's value (`public` is `tokenEndpointAuthMethod: none`): given, it sets that one. */
  readonly alias?: { readonly setting: string; readonly value: (value: T, current: unknown) => unknown };
}

// The kinds of setting. Each builder fixes the type, default and the checks every row of its kind shares.

type Row<T> = Omit<Setting<T>, 'type' | 'default' | 'check'>;

function flag(row: Row<boolean>): Setting<boolean> {
  return { ...row, type: { kind: 'flag' }, default: false, check: (value) => Boolean(value) };
}

/** One-line text, or several lines with `lineBreaks`; a nullable text given empty is unset. */
function text<N extends boolean>(
  row: Row<N extends true ? string | null : string> & { placeholder: string; nullable: N; max: number; lineBreaks?: boolean; invalid: () => DomainError },
): Setting<N extends true ? string | null : string> {
  const { placeholder, nullable, max, lineBreaks, invalid, ...rest } = row;
  type T = N extends true ? string | null : string;
  return {
    ...rest,
    type: { kind: 'text', placeholder, nullable },
    default: (nullable ? null : '') as T,
    check(value) {
      if (nullable && (value === null || String(value).trim() === '')) return null as T;
      const clean = cleanName(String(value ?? ''), max, { lineBreaks });
      if (!clean) throw invalid();
      return clean as T;
    },
  };
}

function integer(row: Row<number | null> & { placeholder: string; min: number; max: number; invalid: () => DomainError }): Setting<number | null> {
  const { placeholder, min, max, invalid, ...rest } = row;
  return {
    ...rest,
    type: { kind: 'integer', placeholder, min, max },
    default: null,
    check(value) {
      if (value !== null && (!Number.isInteger(value) || value < min || value > max)) throw invalid();
      return value;
    },
  };
}

/** Loopback http URIs are always accepted: a relying party under development runs there. */
function checkUri(value: string, what: string, allowHttp: boolean): string {
  const url = URL.parse(value);
  if (!url) throw new DomainError('invalid_uri', `${what} is not an absolute URL: ${value}`);
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && (allowHttp || loopback))) {
    throw new DomainError('invalid_uri', `${what} must use https: ${value}`);
  }
  if (url.hash) throw new DomainError('invalid_uri', `${what} must not have a fragment: ${value}`);
  if (url.username || url.password) throw new DomainError('invalid_uri', `${what} must not carry credentials: ${value}`);
  return value;
}

/** A checked URI; one compared with what callers send (a resource indicator) is kept in its one spelling. */
function checkedUri(value: string, what: string, allowHttp: boolean, canonical: boolean | undefined): string {
  const checked = checkUri(value, what, allowHttp);
  return canonical ? new URL(checked).href : checked;
}

/** `http: 'always'` for a URI only servers call (back-channel logout), which a campus may keep on http. */
function uri(row: Row<string | null> & { placeholder: string; what: string; http?: 'always'; canonical?: boolean }): Setting<string | null> {
  const { placeholder, what, http, canonical, ...rest } = row;
  return {
    ...rest,
    type: { kind: 'uri', placeholder },
    default: null,
    check(value, env) {
      if (value === null || value === '') return null;
      return checkedUri(value, what, env.allowHttp || http === 'always', canonical);
    },
  };
}

function uris(row: Row<string[]> & { placeholder: string; what: string; canonical?: boolean }): Setting<string[]> {
  const { placeholder, what, canonical, ...rest } = row;
  return {
    ...rest,
    type: { kind: 'uris', placeholder },
    default: [],
    check: (values, env) => [...new Set(values.map((value) => checkedUri(value, what, env.allowHttp, canonical)))],
  };
}

/** An ISO date or date-time; a bare date is midnight in the university's time zone. */
function date(row: Row<string | null> & { what: string }): Setting<string | null> {
  const { what, ...rest } = row;
  return {
    ...rest,
    type: { kind: 'date' },
    default: null,
    check(value, env) {
      if (value === null || value === '') return null;
      const at = /^\d{4}-\d{2}-\d{2}$/.test(value) ? startOfDay(value, env.timeZone) : new Date(value);
      if (Number.isNaN(at.getTime())) throw new DomainError('invalid_date', `the ${what} must be a date such as 2027-04-01`);
      return at.toISOString();
    },
  };
}

function choice<V extends string>(row: Row<V> & { values: readonly V[]; default: V; invalid: () => DomainError }): Setting<V> {
  const { values, invalid, ...rest } = row;
  return {
    ...rest,
    type: { kind: 'choice', values },
    check(value) {
      if (!values.includes(value)) throw invalid();
      return value;
    },
  };
}

/** Distinct known values; an empty list is refused where it would close the client to everyone (unless `mayBeEmpty`). */
function list<V extends string, N extends boolean>(
  row: Row<N extends true ? V[] | null : V[]> & {
    placeholder: string;
    values: readonly V[];
    anyMeansAll: N;
    default: N extends true ? V[] | null : V[];
    mayBeEmpty?: boolean;
    invalid: () => DomainError;
  },
): Setting<N extends true ? V[] | null : V[]> {
  const { placeholder, values, anyMeansAll, mayBeEmpty, invalid, ...rest } = row;
  type T = N extends true ? V[] | null : V[];
  return {
    ...rest,
    type: { kind: 'list', placeholder, values, anyMeansAll, mayBeEmpty },
    check(value) {
      if (value === null && anyMeansAll) return null as T;
      if (!Array.isArray(value) || (value.length === 0 && !mayBeEmpty) || value.some((v) => !values.includes(v))) throw invalid();
      return [...new Set(value)] as T;
    },
  };
}

/**
 * Distinct codes an operator names freely (departments), each in its normal form; null (given as
 * "any") is no restriction, and an empty list is refused like an empty `list`. The kind is `list`
 * with no fixed values: the codes are checked by `normalize` instead.
 */
function codes(row: Row<string[] | null> & { placeholder: string; normalize: (value: string) => string | undefined; invalid: () => DomainError }): Setting<string[] | null> {
  const { placeholder, normalize, invalid, ...rest } = row;
  return {
    ...rest,
    type: { kind: 'list', placeholder, values: [], anyMeansAll: true },
    default: null,
    check(value) {
      if (value === null) return null;
      const normal = Array.isArray(value) ? value.map((v) => normalize(String(v))) : [];
      if (normal.length === 0 || normal.some((v) => v === undefined)) throw invalid();
      return [...new Set(normal as string[])];
    },
  };
}

/**
 * NAME=VALUE pairs an operator gives (each NAME once), in the form `normalize` gives them; none
 * by default. The kind is `list` with no fixed values, as for codes.
 */
function pairs(row: Row<string[]> & { placeholder: string; normalize: (pair: string) => string | undefined; invalid: () => DomainError }): Setting<string[]> {
  const { placeholder, normalize, invalid, ...rest } = row;
  return {
    ...rest,
    type: { kind: 'list', placeholder, values: [], anyMeansAll: false, mayBeEmpty: true },
    default: [],
    check(value) {
      const normal = Array.isArray(value) ? value.map((v) => normalize(String(v))) : [undefined];
      if (normal.some((v) => v === undefined)) throw invalid();
      const names = normal.map((pair) => pair!.split('=')[0]);
      if (new Set(names).size !== names.length) throw invalid();
      return normal as string[];
    },
  };
}

/** Members a JWK may carry only in a private or symmetric key. */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** A set of public keys; the provider checks each key in detail when the registration is validated. */
function jwks(row: Row<JwkSet | null>): Setting<JwkSet | null> {
  return {
    ...row,
    type: { kind: 'jwks' },
    default: null,
    check(value) {
      if (value === null) return null;
      const keys = (value as { keys?: unknown }).keys;
      if (typeof value !== 'object' || Array.isArray(value) || !Array.isArray(keys) || keys.length === 0 || keys.some((k) => typeof k !== 'object' || k === null || Array.isArray(k))) {
        throw new DomainError('invalid_client_metadata', 'jwks must be a JSON Web Key Set, {"keys": [...]}, with at least one key');
      }
      const secret = keys.findIndex((key) => PRIVATE_JWK_MEMBERS.some((member) => member in key));
      // The client's private key must never leave the client: refuse it rather than keep it.
      if (secret >= 0) throw new DomainError('invalid_client_metadata', `jwks must hold public keys only: key ${secret + 1} carries private or secret parts`);
      return { keys: keys as JwkSet['keys'] };
    },
  };
}

/**
 * A SAML service provider's metadata: given as XML, kept as read (its entityID, consumer services,
 * logout endpoints and certificates), so that every request is checked against what was registered.
 */
function samlMetadata(row: Row<SpMetadata | null>): Setting<SpMetadata | null> {
  return {
    ...row,
    type: { kind: 'saml-metadata' },
    default: null,
    check(value, env) {
      if (value === null) return null;
      const metadata = typeof value === 'string' ? readMetadataOrRefuse(value) : value;
      // The entityID is the SP's client ID, which every lookup bounds (a longer one could be stored but never found).
      if (metadata.entityId.length > 200) throw new DomainError('invalid_saml_metadata', 'the entityID is longer than 200 characters');
      // Assertions are encrypted with RSA-OAEP (response.ts): a certificate of another key type could never be used.
      if (metadata.encryptionCertificates.some((pem) => new X509Certificate(pem).publicKey.asymmetricKeyType !== 'rsa')) {
        throw new DomainError('invalid_saml_metadata', 'an encryption certificate of the SAML metadata is not an RSA certificate (assertions are encrypted with RSA-OAEP)');
      }
      const acs = metadata.acs.filter((service) => service.binding === BINDING.post);
      if (!acs.length) throw new DomainError('invalid_saml_metadata', 'the SAML metadata names no assertion consumer service with the HTTP-POST binding');
      for (const service of [...metadata.acs, ...metadata.slo]) checkUri(service.location, 'an endpoint of the SAML metadata', env.allowHttp);
      return metadata;
    },
  };
}

function readMetadataOrRefuse(xml: string): SpMetadata {
  try {
    return readSpMetadata(xml);
  } catch (error) {
    throw new DomainError('invalid_saml_metadata', `the SAML metadata cannot be used: ${(error as Error).message}`);
  }
}

/** The client authentication methods Akamon accepts at the token, introspection and revocation endpoints (discovery lists exactly these). */
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'] as const;
type AuthMethod = (typeof AUTH_METHODS)[number];

/**
 * The size of the secret a method needs, or null for methods without one. client_secret_jwt signs
 * with the secret as an HMAC key, which must be at least as long as the hash (RFC 7518 section
 * 3.2): its secret is long enough for HS512, the longest HMAC Akamon accepts.
 */
export function secretBytes(method: AuthMethod): number | null {
  if (method === 'client_secret_jwt') return HMAC_CLIENT_SECRET_BYTES;
  return method === 'none' || method === 'private_key_jwt' ? null : CLIENT_SECRET_BYTES;
}

const grantTypes = (on: boolean, ...types: string[]) => ({ grant_types: on ? types : [] });

/** The grant type of the device authorization grant (RFC 8628 section 3.4). */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** The registration member holding a client's Japanese name. */
export const CLIENT_NAME_JA = 'client_name#ja';

/**
 * The name a page puts in its sentences: the Japanese one on a Japanese page when the operator gave
 * one (`--name-ja`), else the name. Every page that names a system chooses it here.
 */
export function localName(locale: string, name: string, nameJa: string | null | undefined): string {
  return locale === 'ja' && nameJa ? nameJa : name;
}

/**
 * The same for the provider's view of a client (an OIDC relying party, or a SAML service provider
 * through its internal registration), whose Japanese name is the registration's CLIENT_NAME_JA;
 * the client ID for a client without a name.
 */
export function clientDisplayName(client: { clientId: string; clientName?: string }, locale: string): string {
  const nameJa = (client as unknown as Record<string, unknown>)[CLIENT_NAME_JA];
  return localName(locale, client.clientName ?? client.clientId, typeof nameJa === 'string' ? nameJa : null);
}

/** The settings every system a person signs in to has, whatever its protocol. */
const SYSTEM_SETTINGS = {
  name: text({
    option: 'name',
    placeholder: 'NAME',
    nullable: false,
    max: 200,
    invalid: () => new DomainError('invalid_name', 'the client name must be 1 to 200 characters on one line, without control or bidirectional formatting characters'),
    help: { en: 'the name people see on Akamon’s pages (sign-in, consent, the service directory)', ja: 'Akamon の画面(サインイン、同意、サービス一覧)で利用者に見える名前' },
    shown: { label: 'Name', list: { header: 'NAME' } },
    store: { column: 'name', metadata: (name) => ({ client_name: name }) },
  }),
  nameJa: text({
    option: 'name-ja',
    placeholder: 'NAME',
    nullable: true,
    max: 200,
    invalid: () => new DomainError('invalid_name', 'the Japanese name must be at most 200 characters on one line, without control or bidirectional formatting characters'),
    help: { en: 'its name on Japanese pages (without it, the name above is used there too)', ja: '日本語の画面での名前(未設定なら上の名前をそのまま使う)' },
    shown: { label: 'Name (Japanese)' },
    // Also in the registration, language-tagged as OpenID Connect Dynamic Client Registration
    // section 2.1 writes it, so that the sign-in pages read both names from the provider's client.
    store: { column: 'name_ja', metadata: (name) => (name ? { [CLIENT_NAME_JA]: name } : {}) },
  }),
  maxPasswordLength: integer({
    option: 'max-password-length',
    placeholder: 'N',
    min: 8,
    max: 1024,
    invalid: () => new DomainError('invalid_max_password_length', 'the maximum password length must be a whole number from 8 to 1024'),
    help: { en: 'the longest password this service accepts (8 to 1024)', ja: 'このサービスが受け付けるパスワードの最大長(8〜1024)' },
    shown: { label: 'Max password length' },
    store: { column: 'max_password_length' },
  }),
  requireMfa: flag({
    option: 'require-mfa',
    help: { en: 'everyone signing in here must show a second factor', ja: 'ここへのサインインには全員に多要素認証を求める' },
    shown: { label: 'Requires MFA' },
    store: { column: 'require_mfa' },
  }),
  mfaMaxAge: integer({
    option: 'mfa-max-age',
    placeholder: 'SECONDS',
    min: 60,
    max: 31_536_000,
    invalid: () => new DomainError('invalid_mfa_max_age', 'the MFA maximum age must be a whole number of seconds from 60 to 31536000'),
    help: { en: 'ask for the second factor again after this long (60 or more)', ja: 'この秒数が経つと多要素認証をもう一度求める(60以上)' },
    shown: { label: 'MFA max age (s)' },
    store: { column: 'mfa_max_age' },
  }),
  allowedAffiliations: list({
    option: 'allow-affiliation',
    placeholder: 'A,B',
    values: AFFILIATIONS,
    anyMeansAll: true,
    default: null,
    invalid: () => new DomainError('invalid_affiliation', `each affiliation must be one of ${AFFILIATIONS.join(', ')} (at least one)`),
    help: { en: 'only these affiliations may sign in here ("any" for all)', ja: 'ここにサインインできる所属区分("any" で全員)' },
    shown: { label: 'Allowed affiliations', format: (values) => values ?? 'any' },
    store: { column: 'allowed_affiliations' },
  }),
  allowedDepartments: codes({
    option: 'allow-department',
    placeholder: 'D,E',
    normalize: normalizeDepartment,
    invalid: () => new DomainError('invalid_department', 'each department must be a code such as eng or eng/mech (at least one), or "any"'),
    help: {
      en: 'only accounts in these departments, or below them, may sign in here ("eng" takes in "eng/mech"; "any" for all)',
      ja: 'ここにサインインできる所属部局(その下の部局も含む。"eng" は "eng/mech" も含む。"any" で全員)',
    },
    shown: { label: 'Allowed departments', format: (values) => values ?? 'any' },
    store: { column: 'allowed_departments' },
  }),
  allowedStatuses: list({
    option: 'allow-status',
    placeholder: 'S,T',
    values: STATUSES,
    anyMeansAll: false,
    default: ['active'],
    invalid: () => new DomainError('invalid_status', `each status must be one of ${STATUSES.join(', ')} (at least one)`),
    help: { en: 'account statuses allowed here (default: active)', ja: 'ここにサインインできるアカウントの状態(既定: active)' },
    shown: { label: 'Allowed statuses' },
    store: { column: 'allowed_statuses' },
  }),
  requireEducation: flag({
    option: 'require-education',
    help: { en: "only people who passed this year's security education", ja: '今年度の情報セキュリティ教育を修了した人だけ' },
    shown: { label: 'Requires education' },
    store: { column: 'require_education' },
  }),
  salvage: flag({
    option: 'salvage',
    help: {
      en: 'a data-salvage service: revoked accounts reach it through identity verification for a while',
      ja: 'データ救出用のサービス: 失効したアカウントも本人確認を経て一定期間サインインできる',
    },
    shown: { label: 'Data salvage' },
    store: { column: 'salvage' },
  }),
  listed: flag({
    option: 'listed',
    help: { en: 'show it in the public service directory (/services)', ja: '公開のサービス一覧(/services)に載せる' },
    shown: { label: 'Listed in /services' },
    store: { column: 'listed' },
  }),
  description: text({
    option: 'description',
    placeholder: 'TEXT',
    nullable: true,
    max: 500,
    lineBreaks: true,
    invalid: () => new DomainError('invalid_description', 'the description must be at most 500 characters, without control or bidirectional formatting characters (line breaks are allowed)'),
    help: { en: 'its description there', ja: 'サービス一覧での説明' },
    shown: { label: 'Description' },
    store: { column: 'description' },
  }),
  homepageUrl: uri({
    option: 'homepage',
    placeholder: 'URL',
    what: 'homepage URL',
    help: { en: 'its link there', ja: 'サービス一覧でのリンク先' },
    shown: { label: 'Homepage' },
    store: { column: 'homepage_url' },
  }),
  mfaWarningFrom: date({
    option: 'mfa-warning-from',
    what: 'MFA warning date',
    help: { en: 'from this date people without MFA are reminded here', ja: 'この日から、多要素認証を設定していない人にここで案内を出す' },
    shown: { label: 'MFA warning from' },
    store: { column: 'mfa_warning_from' },
  }),
  mfaRequiredFrom: date({
    option: 'mfa-required-from',
    what: 'MFA required date',
    help: { en: 'from this date MFA is required here (dates are midnight in Japan)', ja: 'この日からここでは多要素認証が必須(日付は日本時間の0時)' },
    shown: { label: 'MFA required from' },
    store: { column: 'mfa_required_from' },
  }),
};

/** The settings of an OpenID Connect client (relying party) or API. */
const OIDC_SETTINGS = {
  // A SAML SP never shows a consent page: what it gets is its registered attribute release.
  firstParty: flag({
    option: 'first-party',
    help: { en: 'a university service: no consent page', ja: '大学のサービス(同意画面を出さない)' },
    shown: { label: 'First party', list: { header: 'FIRST PARTY' } },
    store: { column: 'first_party', metadata: (on) => ({ first_party: on }) },
  }),
  redirectUris: uris({
    option: 'redirect-uri',
    placeholder: 'URI',
    what: 'redirect URI',
    help: { en: 'a redirect URI (repeat for more; https, or http on localhost)', ja: 'リダイレクトURI(複数なら繰り返す。https、localhost なら http も可)' },
    shown: { label: 'Redirect URIs' },
    // Without one the client signs nobody in (an API, a back-end service): no code flow at all.
    store: {
      metadata: (values) => ({ redirect_uris: values, response_types: values.length ? ['code'] : [], ...grantTypes(values.length > 0, 'authorization_code', 'refresh_token') }),
      read: (m) => (m.redirect_uris as string[] | undefined) ?? [],
    },
  }),
  public: flag({
    option: 'public',
    help: { en: 'a public client (PKCE, no secret), such as a mobile app: --auth-method none', ja: '公開クライアント(PKCE、シークレットなし。モバイルアプリなど): --auth-method none と同じ' },
    shown: { label: 'Type', format: (on) => (on ? 'public (PKCE, no secret)' : 'confidential'), list: { header: 'TYPE', format: (on) => (on ? 'public' : 'confidential') } },
    store: { metadata: () => ({}), read: (m) => m.token_endpoint_auth_method === 'none' },
    alias: { setting: 'tokenEndpointAuthMethod', value: (on, method) => (on ? 'none' : method === 'none' || method === undefined ? 'client_secret_basic' : method) },
  }),
  tokenEndpointAuthMethod: choice<AuthMethod>({
    option: 'auth-method',
    values: AUTH_METHODS,
    default: 'client_secret_basic',
    invalid: () => new DomainError('invalid_client_metadata', `tokenEndpointAuthMethod must be one of ${AUTH_METHODS.join(', ')}`),
    help: {
      en: `how it authenticates to the token endpoint: ${AUTH_METHODS.join(', ')} (default client_secret_basic; client_secret_jwt gets a longer secret, private_key_jwt needs --jwks or --jwks-uri)`,
      ja: `トークンエンドポイントでのクライアント認証: ${AUTH_METHODS.join(', ')}(既定 client_secret_basic。client_secret_jwt には長いシークレットを発行、private_key_jwt には --jwks か --jwks-uri が必要)`,
    },
    shown: { label: 'Client authentication' },
    store: { metadata: (method) => ({ token_endpoint_auth_method: method }), read: (m) => (m.token_endpoint_auth_method as AuthMethod | undefined) ?? 'client_secret_basic' },
  }),
  jwks: jwks({
    option: 'jwks',
    help: { en: 'a JSON file with its public keys (JWKS) for private_key_jwt', ja: 'private_key_jwt 用の公開鍵(JWKS)の JSON ファイル' },
    shown: { label: 'Keys (JWKS)', format: (set) => set?.keys.map((key) => `${key.kid ?? '(no kid)'} ${key.kty}`) },
    store: { metadata: (set) => (set ? { jwks: set } : {}), read: (m) => (m.jwks as JwkSet | undefined) ?? null },
  }),
  jwksUri: uri({
    option: 'jwks-uri',
    placeholder: 'URI',
    what: 'JWKS URI',
    help: { en: 'where its public keys are published, for private_key_jwt', ja: 'private_key_jwt 用の公開鍵を公開している URI' },
    shown: { label: 'JWKS URI' },
    store: { metadata: (value) => (value ? { jwks_uri: value } : {}), read: (m) => (m.jwks_uri as string | undefined) ?? null },
  }),
  pairwise: flag({
    option: 'pairwise',
    help: { en: 'a different subject identifier per client (privacy)', ja: 'クライアントごとに異なる利用者識別子(sub)を渡す(プライバシー保護)' },
    shown: { label: 'Subject type', format: (on) => (on ? 'pairwise' : 'public') },
    store: { metadata: (on) => ({ subject_type: on ? 'pairwise' : 'public' }), read: (m) => m.subject_type === 'pairwise' },
  }),
  postLogoutRedirectUris: uris({
    option: 'post-logout-uri',
    placeholder: 'URI',
    what: 'post-logout redirect URI',
    help: { en: 'a post-logout redirect URI (repeat for more)', ja: 'ログアウト後のリダイレクトURI(複数なら繰り返す)' },
    shown: { label: 'Post-logout URIs' },
    store: { metadata: (values) => ({ post_logout_redirect_uris: values }), read: (m) => (m.post_logout_redirect_uris as string[] | undefined) ?? [] },
  }),
  backchannelLogoutUri: uri({
    option: 'backchannel-logout-uri',
    placeholder: 'URI',
    what: 'back-channel logout URI',
    http: 'always',
    help: { en: 'where to send back-channel logout tokens', ja: 'バックチャネルログアウトのトークンの送り先' },
    shown: { label: 'Back-channel logout' },
    store: {
      metadata: (value) => (value ? { backchannel_logout_uri: value, backchannel_logout_session_required: true } : {}),
      read: (m) => (m.backchannel_logout_uri as string | undefined) ?? null,
    },
  }),
  // The password grant is a deliberate, per-client exception for back-ends such as mail or Wi-Fi servers.
  legacyPassword: flag({
    option: 'legacy-password',
    help: { en: 'accept the OAuth password grant (app passwords for MFA accounts)', ja: 'OAuth のパスワードグラントを受け付ける(多要素認証の人はアプリパスワード)' },
    shown: { label: 'Password grant' },
    store: { column: 'legacy_password', metadata: (on) => grantTypes(on, 'refresh_token', 'password') },
  }),
  clientCredentials: flag({
    option: 'client-credentials',
    help: { en: 'a back-end service: may get access tokens for itself', ja: 'バックエンドのサービス: 自分自身のアクセストークンを取得できる' },
    shown: { label: 'Client credentials' },
    store: { metadata: (on) => grantTypes(on, 'client_credentials'), read: (m) => ((m.grant_types as string[] | undefined) ?? []).includes('client_credentials') },
  }),
  // Command-line tools and devices without a browser (RFC 8628): the person signs in on another device.
  deviceFlow: flag({
    option: 'device-flow',
    help: {
      en: 'a command-line tool or a device without a browser: may use the device authorization grant (RFC 8628), usually with --public; needs no redirect URI',
      ja: 'コマンドラインのツールやブラウザーのない機器: デバイス認可グラント(RFC 8628)を使える。多くは --public と併用。リダイレクトURIは不要',
    },
    shown: { label: 'Device grant' },
    store: {
      metadata: (on) => grantTypes(on, DEVICE_CODE_GRANT, 'refresh_token'),
      read: (m) => ((m.grant_types as string[] | undefined) ?? []).includes(DEVICE_CODE_GRANT),
    },
  }),
  resourceServer: uri({
    option: 'resource-server',
    placeholder: 'URI',
    what: 'resource indicator',
    canonical: true,
    help: {
      en: 'an API (resource server) with this resource indicator (RFC 8707): relying parties ask for tokens for it with resource=URI, and it may introspect them; it needs no redirect URI',
      ja: 'このリソース指示子(RFC 8707)を持つ API(リソースサーバ): RP は resource=URI でこの API 用のトークンを求め、API はそれをイントロスペクトできる。リダイレクトURIは不要',
    },
    shown: { label: 'API (resource indicator)' },
    store: { column: 'resource_server' },
  }),
  resources: uris({
    option: 'resource',
    placeholder: 'URI',
    what: 'resource indicator',
    canonical: true,
    help: {
      en: 'an API (its resource indicator) this client may get tokens for, on behalf of the person signed in or, with --client-credentials, of itself (repeat for more)',
      ja: 'このクライアントがトークンを取得できる API(リソース指示子)。サインインした人の代わりに、または --client-credentials なら自分として(複数なら繰り返す)',
    },
    shown: { label: 'APIs it may call' },
    store: { column: 'resources' },
  }),
};

/** How a SAML service provider is told who signed in (its NameID): see nameIdFor in src/saml/attributes.ts. */
export const NAME_ID_FORMATS = ['persistent', 'transient', 'email', 'unspecified'] as const;
const SIGNED_PARTS = ['response', 'assertion', 'both'] as const;

/** The settings of a SAML 2.0 service provider; its entityID is its client ID. */
const SAML_SETTINGS = {
  spMetadata: samlMetadata({
    option: 'metadata',
    help: { en: 'its SAML metadata: a file or an https URL (entityID, consumer services, logout, certificates)', ja: 'SAML メタデータ: ファイルか https の URL(entityID、ACS、ログアウト、証明書)' },
    shown: {
      label: 'SAML metadata',
      format: (m) =>
        m && [
          ...m.acs.map((s) => `ACS ${s.index}${s.isDefault ? ' (default)' : ''} ${s.binding.split(':').pop()} ${s.location}`),
          ...m.slo.map((s) => `SLO ${s.binding.split(':').pop()} ${s.location}`),
          `${m.signingCertificates.length} signing and ${m.encryptionCertificates.length} encryption certificate(s)`,
        ],
    },
    store: { saml: true },
  }),
  nameIdFormat: choice({
    option: 'name-id',
    values: NAME_ID_FORMATS,
    default: 'persistent',
    invalid: () => new DomainError('invalid_client_metadata', `nameIdFormat must be one of ${NAME_ID_FORMATS.join(', ')}`),
    help: {
      en: `how it is told who signed in: ${NAME_ID_FORMATS.join(', ')} (default persistent: an opaque identifier of its own; email: the university-registered address; unspecified: the Common ID)`,
      ja: `サインインした人の伝え方: ${NAME_ID_FORMATS.join(', ')}(既定 persistent: このSP専用の不透明な識別子。email: 大学が登録したメールアドレス。unspecified: 共通ID)`,
    },
    shown: { label: 'NameID', list: { header: 'NAMEID' } },
    store: { saml: true },
  }),
  signed: choice({
    option: 'sign',
    values: SIGNED_PARTS,
    default: 'both',
    invalid: () => new DomainError('invalid_client_metadata', `signed must be one of ${SIGNED_PARTS.join(', ')}`),
    help: { en: 'what Akamon signs: response, assertion or both (default both)', ja: 'Akamon が署名するもの: response、assertion、both(既定 both)' },
    shown: { label: 'Signed' },
    store: { saml: true },
  }),
  encryptAssertions: flag({
    option: 'encrypt',
    help: { en: 'encrypt assertions to its encryption certificate (AES-256-GCM, RSA-OAEP)', ja: 'アサーションを SP の暗号化用証明書で暗号化する(AES-256-GCM、RSA-OAEP)' },
    shown: { label: 'Encrypted assertions' },
    store: { saml: true },
  }),
  attributes: list({
    option: 'attributes',
    placeholder: 'NAME,...',
    values: SAML_ATTRIBUTE_NAMES,
    anyMeansAll: false,
    mayBeEmpty: true,
    default: [],
    invalid: () => new DomainError('invalid_client_metadata', `attributes must be some of ${SAML_ATTRIBUTE_NAMES.join(', ')}`),
    help: { en: `the attributes released to it (comma-separated; none by default): ${SAML_ATTRIBUTE_NAMES.join(', ')}`, ja: `渡す属性(カンマ区切り。既定はなし): ${SAML_ATTRIBUTE_NAMES.join(', ')}` },
    shown: { label: 'Attributes' },
    store: { saml: true },
  }),
  attributeNames: pairs({
    option: 'attribute-names',
    placeholder: 'ATTRIBUTE=NAME,...',
    normalize: (pair) => (/^[A-Za-z][\w-]*=[A-Za-z][\w.:/-]{0,127}$/.test(pair.trim()) && SAML_ATTRIBUTE_NAMES.includes(pair.trim().split('=')[0] as never) ? pair.trim() : undefined),
    invalid: () => new DomainError('invalid_client_metadata', `attributeNames must be pairs ATTRIBUTE=NAME, each attribute once, the attribute one of ${SAML_ATTRIBUTE_NAMES.join(', ')}`),
    help: {
      en: 'released attributes sent under a name this SP wants instead of their URI name (e.g. mail=User.Email for Slack; none by default)',
      ja: '渡す属性を、URI 名ではなくこの SP が求める名前で送る(例: Slack には mail=User.Email。既定はなし)',
    },
    shown: { label: 'Attribute names' },
    store: { saml: true },
  }),
  signedRequests: flag({
    option: 'signed-requests',
    help: { en: 'accept only signed AuthnRequests (also when its metadata says it signs them)', ja: '署名付きの AuthnRequest だけを受け付ける(メタデータで署名すると宣言している場合も)' },
    shown: { label: 'Signed requests only' },
    store: { saml: true },
  }),
  idpInitiated: flag({
    option: 'idp-initiated',
    help: { en: 'may be signed in to from Akamon (the service directory) without a request of its own', ja: 'SP からの要求なしに Akamon(サービス一覧)からサインインできる' },
    shown: { label: 'IdP-initiated sign-in' },
    store: { saml: true },
  }),
};

export const CLIENT_SETTINGS = { ...SYSTEM_SETTINGS, ...OIDC_SETTINGS, ...SAML_SETTINGS };

/** The settings each kind of system has: the system settings and those of its protocol. */
const PROTOCOL_SETTINGS: Readonly<Record<Protocol, ReadonlySet<string>>> = {
  oidc: new Set([...Object.keys(SYSTEM_SETTINGS), ...Object.keys(OIDC_SETTINGS)]),
  saml: new Set([...Object.keys(SYSTEM_SETTINGS), ...Object.keys(SAML_SETTINGS)]),
};

type Settings = typeof CLIENT_SETTINGS;
export type SettingKey = keyof Settings;
export type ClientValues = { -readonly [K in SettingKey]: Settings[K] extends Setting<infer T> ? T : never };
/** What an operator gives: what is left out (undefined) is the default on create and unchanged on update. */
export type ClientInput = Partial<ClientValues>;
export type ClientView = ClientValues & { clientId: string; protocol: Protocol; createdAt: string; updatedAt: string };

/** Every row with its key, in the table's order (the order of help and display). */
export const SETTING_ENTRIES = Object.entries(CLIENT_SETTINGS) as Array<[SettingKey, Setting<unknown>]>;

/** The rows a system of this protocol has, in the table's order. */
export function settingEntries(protocol: Protocol): Array<[SettingKey, Setting<unknown>]> {
  return SETTING_ENTRIES.filter(([key]) => PROTOCOL_SETTINGS[protocol].has(key));
}

/** Whether a client without redirect URIs still has a use (it then signs nobody in itself). */
export function mayLackRedirectUris(values: Pick<ClientInput, 'resourceServer' | 'clientCredentials' | 'deviceFlow'>): boolean {
  return Boolean(values.resourceServer) || values.clientCredentials === true || values.deviceFlow === true;
}

/** Rules between settings, checked after each setting's own, for each protocol. */
const RULES: Readonly<Record<Protocol, ReadonlyArray<(v: ClientValues, env: SettingEnv) => void>>> = {
  oidc: [
    (v) => {
      if (!v.redirectUris.length && !mayLackRedirectUris(v)) {
        throw new DomainError(
          'invalid_uri',
          'a client needs at least one redirect URI (--redirect-uri), unless it is an API (--resource-server), a back-end service (--client-credentials) or uses the device grant (--device-flow)',
        );
      }
    },
    (v) => {
      if (v.clientCredentials && v.tokenEndpointAuthMethod === 'none') {
        throw new DomainError('invalid_client_metadata', 'a public client has no secret to authenticate a client-credentials grant');
      }
    },
    (v) => {
      if (v.resourceServer && v.tokenEndpointAuthMethod === 'none') {
        throw new DomainError('invalid_client_metadata', 'an API (resource server) must authenticate to introspect tokens: it cannot be a public client');
      }
    },
    (v) => {
      const keys = v.jwks !== null || v.jwksUri !== null;
      if (v.tokenEndpointAuthMethod === 'private_key_jwt' && !keys) {
        throw new DomainError('invalid_client_metadata', "private_key_jwt needs the client's public keys: --jwks FILE or --jwks-uri URI (admin API: jwks or jwksUri)");
      }
      if (v.jwks !== null && v.jwksUri !== null) throw new DomainError('invalid_client_metadata', 'give the keys either inline (jwks) or by URI (jwksUri), not both');
      // Keys left from an earlier private_key_jwt would be trusted for nothing, yet look as if they were.
      if (v.tokenEndpointAuthMethod !== 'private_key_jwt' && keys) {
        throw new DomainError('invalid_client_metadata', 'keys (jwks, jwksUri) are used only with private_key_jwt: remove them (--no-jwks, --no-jwks-uri) or keep that method');
      }
    },
  ],
  saml: [
    (v) => {
      if (!v.spMetadata) throw new DomainError('invalid_saml_metadata', 'a SAML service provider needs its metadata (--metadata FILE or URL)');
    },
    (v, env) => {
      if (env.entityId !== undefined && v.spMetadata!.entityId !== env.entityId) {
        throw new DomainError('invalid_saml_metadata', `the metadata is of another entity (${v.spMetadata!.entityId}): this service provider is ${env.entityId}`);
      }
    },
    (v) => {
      if (v.encryptAssertions && !v.spMetadata?.encryptionCertificates.length) {
        throw new DomainError('invalid_client_metadata', 'encrypted assertions need an encryption certificate in the SAML metadata');
      }
    },
    (v) => {
      const unreleased = v.attributeNames.map((pair) => pair.split('=')[0]).filter((name) => !(v.attributes as string[]).includes(name));
      if (unreleased.length) throw new DomainError('invalid_client_metadata', `attributeNames names ${unreleased.join(', ')}, not released to this SP (--attributes)`);
    },
    (v) => {
      if (v.spMetadata?.wantAssertionsSigned && v.signed === 'response') {
        throw new DomainError('invalid_client_metadata', 'its metadata wants signed assertions (WantAssertionsSigned): sign the assertion too (--sign assertion or both)');
      }
    },
    (v) => {
      if ((v.signedRequests || v.spMetadata?.authnRequestsSigned) && !v.spMetadata?.signingCertificates.length) {
        throw new DomainError('invalid_client_metadata', 'signed requests can be checked only with a signing certificate in the SAML metadata');
      }
    },
  ],
};

export function defaultValues(): ClientValues {
  return Object.fromEntries(SETTING_ENTRIES.map(([key, setting]) => [key, structuredClone(setting.default)])) as ClientValues;
}

/** The given settings over `current`; a shorthand sets the setting it stands for, unless that one is given too and says otherwise. */
export function mergeValues(current: ClientValues, given: ClientInput): ClientValues {
  const defined = Object.fromEntries(Object.entries(given).filter(([key, value]) => value !== undefined && key in CLIENT_SETTINGS));
  const merged = { ...current, ...defined } as Record<string, unknown>;
  for (const [key, setting] of SETTING_ENTRIES) {
    if (!setting.alias || defined[key] === undefined) continue;
    const { setting: target, value } = setting.alias;
    const implied = value(defined[key], defined[target] ?? current[target as SettingKey]);
    if (defined[target] !== undefined && defined[target] !== implied) {
      throw new DomainError('invalid_client_metadata', `${key} and ${target} contradict each other`);
    }
    merged[target] = implied;
  }
  return merged as ClientValues;
}

/**
 * Every setting in its normal form, and the rules between them; throws on the first problem. A
 * setting of the other protocol cannot be given (an OIDC client has no SAML metadata).
 */
export function checkValues(values: ClientValues, env: SettingEnv, protocol: Protocol): ClientValues {
  const own = PROTOCOL_SETTINGS[protocol];
  const foreign = SETTING_ENTRIES.find(([key, setting]) => !own.has(key) && JSON.stringify(values[key]) !== JSON.stringify(setting.default));
  if (foreign) {
    const what = protocol === 'saml' ? 'a SAML service provider' : 'an OpenID Connect client';
    throw new DomainError('invalid_client_metadata', `${foreign[0]} (--${foreign[1].option}) is not a setting of ${what}`);
  }
  const checked = { ...defaultValues(), ...Object.fromEntries(settingEntries(protocol).map(([key, setting]) => [key, setting.check(values[key], env)])) } as ClientValues;
  for (const rule of RULES[protocol]) rule(checked, env);
  return checked;
}

/**
 * Where checked values are kept: the columns of the `client` row, the provider's registration (an
 * OIDC client's) and the SAML registration (a service provider's).
 */
export function storedForm(clientId: string, values: ClientValues, protocol: Protocol): { columns: Record<string, unknown>; metadata: Metadata } {
  const saml: Record<string, unknown> = {};
  const columns: Record<string, unknown> = { protocol, saml: protocol === 'saml' ? saml : null };
  const metadata: Metadata = { client_id: clientId };
  const grants: string[] = [];
  for (const [key, setting] of settingEntries(protocol)) {
    const value = values[key];
    const { store } = setting;
    if ('saml' in store) {
      saml[key] = value;
      continue;
    }
    if ('column' in store) columns[store.column] = setting.type.kind === 'date' && value !== null ? new Date(value as string) : value;
    for (const [name, part] of Object.entries(store.metadata?.(value) ?? {})) {
      // Several settings each allow grants: the registration has the union, in the order given.
      if (name === 'grant_types') grants.push(...(part as string[]));
      else metadata[name] = part;
    }
  }
  metadata.grant_types = [...new Set(grants)];
  return { columns, metadata };
}

/** The settings of a stored client, as the admin API and the CLI show them. */
export function storedValues(row: ClientRow): ClientValues {
  const metadata = row.metadata as Metadata;
  const read = ([key, setting]: [SettingKey, Setting<unknown>]) => {
    const { store } = setting;
    if ('saml' in store) return [key, (row.saml as Record<string, unknown> | null)?.[key] ?? structuredClone(setting.default)];
    if (!('column' in store)) return [key, store.read(metadata)];
    const value = (row as unknown as Record<string, unknown>)[store.column];
    return [key, setting.type.kind === 'date' && value ? new Date(value as string).toISOString() : value];
  };
  return Object.fromEntries(SETTING_ENTRIES.map(read)) as ClientValues;
}
