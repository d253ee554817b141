import type { Selectable } from 'kysely';
import type { AccountTable } from '../db/schema.ts';
import { DomainError } from '../shared/errors.ts';
import { cleanName } from '../shared/text.ts';
import { DEPARTMENT_MAX_LENGTH, normalizeDepartment } from './department.ts';

/**
 * The account fields that feed claims and access rules beyond the core ones (Common ID, name,
 * affiliation, email), one row each. The rows drive the admin API's input and output, the CSV
 * columns of `account import`, the CLI options of `account create` and `account update` and the
 * lines of `account show`, so that a new field is one row here plus its column.
 */
export type ProfileValues = Pick<
  Selectable<AccountTable>,
  'email_verified' | 'family_name' | 'given_name' | 'family_name_ja' | 'given_name_ja' | 'family_name_kana' | 'given_name_kana' | 'department' | 'entitlements'
>;

type Column<T> = { [C in keyof ProfileValues]: ProfileValues[C] extends T ? C : never }[keyof ProfileValues];

interface Row<C extends keyof ProfileValues> {
  /** The database column, which is also the CSV column. */
  column: C;
  /** The admin API's (JSON) name. */
  key: string;
  /** The CLI option, without the dashes. */
  option: string;
  /** The line in `account show`. */
  label: string;
  /** The CLI help, after the option, in the operator's language. */
  help: { en: string; ja: string };
}

type AccountField =
  | (Row<Column<string | null>> & { kind: 'text'; clean(value: string): string })
  | (Row<Column<boolean>> & { kind: 'flag' })
  | (Row<Column<string[]>> & { kind: 'list'; max: number; clean(value: string): string });

const NAME_MAX = 100;

// Japanese scripts in a field meant for Latin script: the columns were most likely swapped.
const JAPANESE_SCRIPT = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;
// Latin letters and their combining marks, and what separates or abbreviates parts of a name.
const LATIN_NAME = /^[\p{Script=Latin}\p{M} .'’-]+$/u;
// Katakana, the prolonged sound mark, the middle dot and the iteration marks, in words separated by single spaces.
const KATAKANA = /^[\u30a1-\u30fa\u30fb-\u30fe]+( [\u30a1-\u30fa\u30fb-\u30fe]+)*$/;
// An absolute URI (urn:mace:..., https://...) in printable ASCII.
const URI = /^[a-z][a-z0-9+.-]*:[\x21-\x7e]+$/i;

const badName = (label: string, rule: string): never => {
  throw new DomainError('invalid_name', `the ${label} must be ${rule}`);
};

/** Full-width letters (ＹＡＭＡＤＡ) become ASCII; only Latin script is left. */
function latinName(label: string) {
  return (value: string): string => {
    const name = cleanName(value.normalize('NFKC'), NAME_MAX);
    if (!name) return badName(label, `1 to ${NAME_MAX} characters on one line, without control or bidirectional formatting characters`);
    if (JAPANESE_SCRIPT.test(name) || !LATIN_NAME.test(name)) return badName(label, 'in Latin script (the Japanese name and its reading have their own fields)');
    return name;
  };
}

function japaneseName(label: string) {
  return (value: string): string => cleanName(value, NAME_MAX) ?? badName(label, `1 to ${NAME_MAX} characters on one line, without control or bidirectional formatting characters`);
}

/**
 * The reading as katakana (the ja-Kana-JP claims): feeding systems export it in half-width
 * katakana or in hiragana as often as in katakana, so all three are taken and kept as katakana.
 */
function reading(label: string) {
  return (value: string): string => {
    const folded = value
      .normalize('NFKC')
      .replace(/[\u3041-\u3096]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0x60))
      .replace(/\s+/g, ' ')
      .trim();
    if (!folded || folded.length > NAME_MAX || !KATAKANA.test(folded)) throw new DomainError('invalid_reading', `the ${label} must be katakana (or hiragana), 1 to ${NAME_MAX} characters`);
    return folded;
  };
}

function department(value: string): string {
  const code = normalizeDepartment(value);
  if (!code)
    throw new DomainError(
      'invalid_department',
      `the department must be a code of letters, digits, ".", "_" and "-", levels separated by "/" (such as eng/mech), at most ${DEPARTMENT_MAX_LENGTH} characters`,
    );
  return code;
}

function entitlement(value: string): string {
  const uri = value.trim();
  if (uri.length > 255 || !URI.test(uri))
    throw new DomainError('invalid_entitlement', `an entitlement must be an absolute URI such as urn:mace:dir:entitlement:common-lib-terms, at most 255 characters: "${uri.slice(0, 80)}"`);
  return uri;
}

export const ACCOUNT_FIELDS: readonly AccountField[] = [
  {
    kind: 'flag',
    column: 'email_verified',
    key: 'emailVerified',
    option: 'email-verified',
    label: 'Email verified',
    help: {
      en: 'the university vouches for the email address (the default); --no-email-verified for one the person typed in and nobody checked',
      ja: '大学がメールアドレスを保証する(既定)。本人が入力し誰も確認していないものは --no-email-verified',
    },
  },
  {
    kind: 'text',
    column: 'family_name',
    key: 'familyName',
    option: 'family-name',
    label: 'Family name',
    help: { en: 'family name in Latin script (Yamada)', ja: 'ローマ字の姓(Yamada)' },
    clean: latinName('family name'),
  },
  {
    kind: 'text',
    column: 'given_name',
    key: 'givenName',
    option: 'given-name',
    label: 'Given name',
    help: { en: 'given name in Latin script (Hanako)', ja: 'ローマ字の名(Hanako)' },
    clean: latinName('given name'),
  },
  {
    kind: 'text',
    column: 'family_name_ja',
    key: 'familyNameJa',
    option: 'family-name-ja',
    label: 'Family name (ja)',
    help: { en: 'family name in Japanese script (山田)', ja: '漢字などの姓(山田)' },
    clean: japaneseName('Japanese family name'),
  },
  {
    kind: 'text',
    column: 'given_name_ja',
    key: 'givenNameJa',
    option: 'given-name-ja',
    label: 'Given name (ja)',
    help: { en: 'given name in Japanese script (花子)', ja: '漢字などの名(花子)' },
    clean: japaneseName('Japanese given name'),
  },
  {
    kind: 'text',
    column: 'family_name_kana',
    key: 'familyNameKana',
    option: 'family-name-kana',
    label: 'Family name (kana)',
    help: { en: 'reading of the family name in katakana (ヤマダ)', ja: '姓の読み(カタカナ、ヤマダ)' },
    clean: reading('reading of the family name'),
  },
  {
    kind: 'text',
    column: 'given_name_kana',
    key: 'givenNameKana',
    option: 'given-name-kana',
    label: 'Given name (kana)',
    help: { en: 'reading of the given name in katakana (ハナコ)', ja: '名の読み(カタカナ、ハナコ)' },
    clean: reading('reading of the given name'),
  },
  {
    kind: 'text',
    column: 'department',
    key: 'department',
    option: 'department',
    label: 'Department',
    help: { en: 'department code, levels separated by "/" (eng/mech)', ja: '部局コード。階層は "/" で区切る(eng/mech)' },
    clean: department,
  },
  {
    kind: 'list',
    column: 'entitlements',
    key: 'entitlements',
    option: 'entitlements',
    label: 'Entitlements',
    help: { en: 'eduPerson entitlement URIs, separated by spaces', ja: 'eduPerson の権利 URI(空白区切り)' },
    max: 50,
    clean: entitlement,
  },
];

export const ACCOUNT_FIELD_KEYS: ReadonlySet<string> = new Set(ACCOUNT_FIELDS.map((f) => f.key));

const invalid = (message: string): never => {
  throw new DomainError('invalid_request', message);
};

/**
 * The fields present in a JSON body (admin API names), checked and normalised. null clears a text
 * field or the list; a field left out is not touched.
 */
export function readProfile(body: Readonly<Record<string, unknown>>): Partial<ProfileValues> {
  const values: Record<string, unknown> = {};
  for (const field of ACCOUNT_FIELDS) {
    const value = body[field.key];
    if (value === undefined) continue;
    if (field.kind === 'flag') {
      if (typeof value !== 'boolean') invalid(`${field.key} must be true or false`);
      values[field.column] = value;
    } else if (field.kind === 'text') {
      if (value !== null && typeof value !== 'string') invalid(`${field.key} must be a string or null`);
      const text = value as string | null;
      values[field.column] = text === null || text.trim() === '' ? null : field.clean(text);
    } else {
      if (value !== null && !(Array.isArray(value) && value.every((v) => typeof v === 'string'))) invalid(`${field.key} must be a list of strings or null`);
      const list = [...new Set(((value ?? []) as string[]).map(field.clean))];
      if (list.length > field.max) invalid(`${field.key} holds at most ${field.max} values`);
      values[field.column] = list;
    }
  }
  return values as Partial<ProfileValues>;
}

const YES = new Set(['true', 'yes', '1']);
const NO = new Set(['false', 'no', '0']);

/**
 * A field's value typed as text (a CSV cell, a CLI option) as the admin API takes it: an empty
 * text field or list is null (cleared), a flag is true/false, yes/no or 1/0, a list is separated
 * by spaces.
 */
export function fieldFromText(field: AccountField, text: string): unknown {
  const value = text.trim();
  if (field.kind === 'flag') {
    if (YES.has(value.toLowerCase())) return true;
    if (NO.has(value.toLowerCase())) return false;
    return invalid(`${field.column} must be true or false, got "${value.slice(0, 20)}"`);
  }
  if (field.kind === 'list') return value ? value.split(/\s+/) : null;
  return value || null;
}

/** The fields of an account as the admin API shows them. */
export function profileJson(values: ProfileValues): Record<string, unknown> {
  return Object.fromEntries(ACCOUNT_FIELDS.map((field) => [field.key, values[field.column]]));
}
