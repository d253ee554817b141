import { AFFILIATIONS } from '../account/account-input.ts';
import { normalizeDepartment } from '../account/department.ts';
import type { Affiliation } from '../db/schema.ts';
import { DomainError } from '../shared/errors.ts';
import { PERSON_ROLES, ROLES, type Role, type Scope } from './permissions.ts';

/** The longest an API token may live: a forgotten automation token should not outlast a year. */
export const TOKEN_MAX_DAYS = 366;
/** An API token's lifetime when the operator names none: a quarter, long enough for a term's automation. */
export const TOKEN_DEFAULT_DAYS = 90;

const bad = (message: string): never => {
  throw new DomainError('invalid_request', message);
};

/**
 * A role and its scope as an operator gives them (the admin API's JSON, the console's form): the
 * role's name, department codes (a unit takes in those below it) and affiliations. No departments
 * and no affiliations, or the admin role, is the whole university (null).
 */
export function roleAndScope(role: unknown, departments: readonly unknown[], affiliations: readonly unknown[], forPerson = false): { role: Role; scope: Scope | null } {
  const roles: readonly Role[] = forPerson ? PERSON_ROLES : ROLES;
  if (!roles.includes(role as Role)) bad(`role must be one of ${roles.join(', ')}`);
  const codes = departments.map((d) => (typeof d === 'string' && normalizeDepartment(d)) || bad(`department ${JSON.stringify(d).slice(0, 80)} is not a department code such as eng or eng/mech`));
  const groups = affiliations.map((a) => (AFFILIATIONS.includes(a as Affiliation) ? (a as Affiliation) : bad(`affiliations must be among ${AFFILIATIONS.join(', ')}`)));
  return { role: role as Role, scope: role === 'admin' || (!codes.length && !groups.length) ? null : { departments: codes, affiliations: groups } };
}

/** An API token's name: what lists and the audit trail show of it. */
export function tokenName(value: unknown): string {
  const name = typeof value === 'string' ? value.trim() : '';
  if (!/^[\p{L}\p{N} ._-]{1,64}$/u.test(name)) bad('name must be 1 to 64 letters, digits, spaces, dots, dashes or underscores');
  return name;
}

/** When a token made now for `days` days expires. */
export function tokenExpiry(days: unknown, now: Date): Date {
  if (!Number.isInteger(days) || (days as number) < 1 || (days as number) > TOKEN_MAX_DAYS) bad(`expiresInDays must be a whole number from 1 to ${TOKEN_MAX_DAYS}`);
  return new Date(now.getTime() + (days as number) * 86_400_000);
}
