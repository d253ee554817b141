import type { AccountRow } from '../account/account.store.ts';
import { CORE_FIELDS, isProblem } from '../account/account-input.ts';
import { ACCOUNT_FIELDS, readProfile } from '../account/account-fields.ts';
import type { CoreField } from '../account/account.service.ts';
import { COMMON_ID_PATTERN } from '../account/common-id.ts';
import { revocationTime } from '../account/revocation.ts';
import { ScimError, invalidValue } from './scim-error.ts';
import { member } from './scim-filter.ts';
import { AKAMON_SCHEMA, ENTERPRISE_SCHEMA, EXTENSIONS, USER_SCHEMA } from './scim-schema.ts';

/**
 * A User resource and an Akamon account, both ways. Core SCIM carries the Common ID (userName), the
 * name in Latin script, the university-registered address (emails, type work) and active; the
 * enterprise extension the department; Akamon's extension the names in Japanese script and kana,
 * the affiliation and its scheduled end.
 */

/** What a User resource asks the account to be. `active` and `affiliationEnd` left out: as they are. */
export interface UserState {
  commonId: string;
  core: Record<CoreField, unknown>;
  /** The fields of account-fields.ts that SCIM manages, by their admin API names; null clears one. */
  profile: Record<string, unknown>;
  active: boolean | undefined;
  affiliationEnd: Date | null | undefined;
}

/** The fields of account-fields.ts that SCIM carries (emailVerified stays the university's default). */
const PROFILE_KEYS = ['familyName', 'givenName', 'familyNameJa', 'givenNameJa', 'familyNameKana', 'givenNameKana', 'department', 'entitlements'] as const;
const CORE_COLUMNS: Record<CoreField, 'name' | 'email' | 'affiliation' | 'external_id'> = { name: 'name', email: 'email', affiliation: 'affiliation', externalId: 'external_id' };

const iso = (value: Date | string | null) => (value === null ? undefined : new Date(value).toISOString());

/** A weak entity tag from the row's last change: every write sets updated_at. */
export const etagOf = (row: AccountRow) => `W/"${new Date(row.updated_at).getTime().toString(36)}"`;

/** Leaves out what the account does not have, as RFC 7643 2.5 lets unassigned attributes be. */
const present = (entries: Record<string, unknown>) => Object.fromEntries(Object.entries(entries).filter(([, value]) => value !== null && value !== undefined));

export function userResource(row: AccountRow, baseUrl: string) {
  const extension = present({
    familyNameJa: row.family_name_ja,
    givenNameJa: row.given_name_ja,
    familyNameKana: row.family_name_kana,
    givenNameKana: row.given_name_kana,
    affiliation: row.affiliation,
    affiliationEnd: iso(row.revoke_at),
    status: row.status,
    revokedAt: iso(row.revoked_at),
  });
  return present({
    schemas: [USER_SCHEMA, ...(row.department ? [ENTERPRISE_SCHEMA] : []), AKAMON_SCHEMA],
    id: row.id,
    externalId: row.external_id,
    userName: row.common_id,
    name: present({ formatted: row.name, familyName: row.family_name, givenName: row.given_name }),
    displayName: row.name,
    emails: row.email ? [{ value: row.email, type: 'work', primary: true }] : undefined,
    // A revoked account is not active, whatever else is true of it.
    active: row.status === 'active',
    entitlements: row.entitlements.length ? row.entitlements.map((value) => ({ value })) : undefined,
    [ENTERPRISE_SCHEMA]: row.department ? { department: row.department } : undefined,
    [AKAMON_SCHEMA]: extension,
    meta: {
      resourceType: 'User',
      created: iso(row.created_at),
      lastModified: iso(row.updated_at),
      location: `${baseUrl}/Users/${row.id}`,
      version: etagOf(row),
    },
  });
}

/** The Common ID in a userName: the realm-qualified form (0123456789@utac.u-tokyo.ac.jp) names the same account. */
export function plainUserName(value: string, realm: string | undefined): string {
  const name = value.trim();
  return realm && name.toLowerCase().endsWith(`@${realm}`) ? name.slice(0, -(realm.length + 1)) : name;
}

const TOP_LEVEL = ['schemas', 'id', 'externalId', 'userName', 'name', 'displayName', 'emails', 'active', 'entitlements', 'meta', 'groups', ...EXTENSIONS];
const READ_ONLY_EXTENSION = ['status', 'revokedAt'];

function object(value: unknown, what: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) return invalidValue(`${what} must be an object`);
  return value as Record<string, unknown>;
}

/** The members of an object, refusing any not in `known`: a misspelt attribute is never dropped without a word. */
function only(value: Record<string, unknown>, known: readonly string[], what: string): void {
  const unknown = Object.keys(value).filter((key) => !known.some((k) => k.toLowerCase() === key.toLowerCase()));
  if (unknown.length) invalidValue(`unknown attribute ${unknown.map((k) => k.slice(0, 80)).join(', ')} in ${what}; the attributes are ${known.join(', ')} (see /Schemas)`);
}

function textOf(value: unknown, what: string): string | null | undefined {
  if (value === undefined || value === null || typeof value === 'string') return value;
  return invalidValue(`${what} must be a string`);
}

function booleanOf(value: unknown, what: string): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  // Some provisioning clients send PATCH values as text ("False"): the meaning is plain.
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  return invalidValue(`${what} must be true or false`);
}

function workEmail(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value)) return invalidValue('emails must be a list');
  const emails = value.map((entry) => {
    const email = object(entry, 'an email');
    only(email, ['value', 'type', 'primary', 'display'], 'an email');
    const type = textOf(member(email, 'type'), 'emails.type');
    if (type && type.toLowerCase() !== 'work') {
      invalidValue(`SCIM sets only the university-registered address (type work); the recovery address is the person's own, not "${type.slice(0, 20)}"`);
    }
    booleanOf(member(email, 'primary'), 'emails.primary');
    return textOf(member(email, 'value'), 'emails.value');
  });
  if (emails.length > 1) invalidValue('an account has one university-registered address (type work)');
  return emails[0] ?? null;
}

function entitlementsOf(value: unknown): string[] | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value)) return invalidValue('entitlements must be a list');
  return value.map((entry) => {
    if (typeof entry === 'string') return entry;
    const item = object(entry, 'an entitlement');
    only(item, ['value', 'type', 'primary', 'display'], 'an entitlement');
    return textOf(member(item, 'value'), 'entitlements.value') ?? invalidValue('an entitlement needs a value');
  });
}

/**
 * What a User resource (POST, PUT, or the result of a PATCH) asks for, with the types checked.
 * The values themselves are checked by the account's own rules in `plan` and at create.
 */
export function readUser(body: unknown, options: { realm: string | undefined; timeZone: string; requireSchemas: boolean }): UserState {
  const user = object(body, 'the body');
  only(user, TOP_LEVEL, 'a User');
  const schemas = member(user, 'schemas');
  if (options.requireSchemas) {
    if (!Array.isArray(schemas) || !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === USER_SCHEMA.toLowerCase())) {
      throw new ScimError(400, 'invalidSyntax', `schemas must list ${USER_SCHEMA}`);
    }
    const unknown = schemas.filter((s) => typeof s !== 'string' || ![USER_SCHEMA, ...EXTENSIONS].some((known) => known.toLowerCase() === s.toLowerCase()));
    if (unknown.length) invalidValue(`unknown schema ${String(unknown[0]).slice(0, 100)}; a User has ${[USER_SCHEMA, ...EXTENSIONS].join(', ')}`);
  }
  const userName = member(user, 'userName');
  if (typeof userName !== 'string') invalidValue('userName (the Common ID) is required');
  const commonId = plainUserName(userName as string, options.realm);
  if (!COMMON_ID_PATTERN.test(commonId)) invalidValue('userName must be a Common ID: 10 digits, with or without the realm');

  const name = object(member(user, 'name'), 'name');
  only(name, ['formatted', 'familyName', 'givenName'], 'name');
  const formatted = textOf(member(name, 'formatted'), 'name.formatted');
  const familyName = textOf(member(name, 'familyName'), 'name.familyName');
  const givenName = textOf(member(name, 'givenName'), 'name.givenName');
  const displayName = textOf(member(user, 'displayName'), 'displayName');
  const shown = formatted || displayName || [givenName, familyName].filter(Boolean).join(' ');
  if (!shown) invalidValue('name.formatted (or displayName, or name.givenName and name.familyName) is required');

  const enterprise = object(member(user, ENTERPRISE_SCHEMA), ENTERPRISE_SCHEMA);
  only(enterprise, ['department'], ENTERPRISE_SCHEMA);
  const akamon = object(member(user, AKAMON_SCHEMA), AKAMON_SCHEMA);
  only(akamon, ['familyNameJa', 'givenNameJa', 'familyNameKana', 'givenNameKana', 'affiliation', 'affiliationEnd', ...READ_ONLY_EXTENSION], AKAMON_SCHEMA);
  const affiliation = textOf(member(akamon, 'affiliation'), 'affiliation');
  if (!affiliation) invalidValue(`${AKAMON_SCHEMA}:affiliation is required`);
  const end = member(akamon, 'affiliationEnd');
  const affiliationEnd = end === undefined || end === null ? (end as null | undefined) : revocationTime(end, options.timeZone, 'affiliationEnd');

  const profile: Record<string, unknown> = {
    familyName: familyName ?? null,
    givenName: givenName ?? null,
    familyNameJa: textOf(member(akamon, 'familyNameJa'), 'familyNameJa') ?? null,
    givenNameJa: textOf(member(akamon, 'givenNameJa'), 'givenNameJa') ?? null,
    familyNameKana: textOf(member(akamon, 'familyNameKana'), 'familyNameKana') ?? null,
    givenNameKana: textOf(member(akamon, 'givenNameKana'), 'givenNameKana') ?? null,
    department: textOf(member(enterprise, 'department'), 'department') ?? null,
    entitlements: entitlementsOf(member(user, 'entitlements')),
  };
  const externalId = member(user, 'externalId');
  return {
    commonId,
    core: { name: shown, email: workEmail(member(user, 'emails')), affiliation, externalId: externalId === undefined ? null : textOf(externalId, 'externalId') },
    profile,
    active: booleanOf(member(user, 'active'), 'active'),
    affiliationEnd,
  };
}

/** What must change for the account to be as asked; empty when it already is. */
export interface Plan {
  core: Partial<Record<CoreField, unknown>>;
  profile: Record<string, unknown>;
  status?: 'active' | 'suspended';
  affiliationEnd?: Date | null;
  /** The department and affiliation after the change, for the scope check before anything is written. */
  after: { department: string | null; affiliation: AccountRow['affiliation'] };
}

export const isEmpty = (plan: Plan) => !Object.keys(plan.core).length && !Object.keys(plan.profile).length && plan.status === undefined && plan.affiliationEnd === undefined;

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * The changes that make `current` what `wanted` asks, every value checked by the account's rules
 * first, so that a refusal comes before anything is written.
 */
export function plan(current: AccountRow, wanted: UserState, now: Date): Plan {
  if (wanted.commonId !== current.common_id) throw new ScimError(400, 'mutability', 'userName (the Common ID) cannot be changed');
  const core: Plan['core'] = {};
  for (const key of Object.keys(CORE_COLUMNS) as CoreField[]) {
    const value = CORE_FIELDS[key](wanted.core[key]);
    if (isProblem(value)) invalidValue(value.message);
    if (!same(value, current[CORE_COLUMNS[key]])) core[key] = value;
  }
  const profile: Plan['profile'] = {};
  for (const key of PROFILE_KEYS) {
    const field = ACCOUNT_FIELDS.find((f) => f.key === key)!;
    const value = readProfile({ [key]: wanted.profile[key] })[field.column];
    if (!same(value ?? (field.kind === 'list' ? [] : null), current[field.column])) profile[key] = wanted.profile[key];
  }
  const result: Plan = {
    core,
    profile,
    after: {
      department: profile.department === undefined ? current.department : (readProfile({ department: profile.department }).department ?? null),
      affiliation: (core.affiliation ?? current.affiliation) as AccountRow['affiliation'],
    },
  };
  if (current.status === 'revoked') {
    if (wanted.active) throw new ScimError(400, 'mutability', 'the account is revoked and cannot be reactivated by provisioning; the ICT office can help');
    // A revoked account's affiliation has ended: there is nothing left to schedule.
    return result;
  }
  if (wanted.active === false && current.status === 'active') result.status = 'suspended';
  if (wanted.active === true && current.status === 'suspended') result.status = 'active';
  const scheduled = current.revoke_at ? new Date(current.revoke_at).getTime() : null;
  if (wanted.affiliationEnd !== undefined && (wanted.affiliationEnd?.getTime() ?? null) !== scheduled) {
    if (wanted.affiliationEnd && wanted.affiliationEnd.getTime() < now.getTime() - 86_400_000) invalidValue('affiliationEnd has passed; DELETE the User to revoke the account now');
    result.affiliationEnd = wanted.affiliationEnd;
  }
  return result;
}
