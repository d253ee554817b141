import { AFFILIATIONS } from '../account/account-input.ts';
import { normalizeDepartment } from '../account/department.ts';
import type { Affiliation } from '../db/schema.ts';
import { DomainError } from '../shared/errors.ts';
import { excerpt } from '../shared/text.ts';
import { PERSON_ROLES, ROLES, type Role, type Scope, takesScope } from './permissions.ts';
import { OPERATOR_TOKEN_MAX_DAYS } from '../config/defaults.ts';

/**
 * A refusal: the admin API's English `message`, and the rule broken (`problem`, with the values it
 * names) for pages that say it in their own language (the console's operators page).
 */
const bad = (message: string, problem: OperatorInputProblem, vars: Record<string, string | number> = {}): never => {
  throw new DomainError('invalid_request', message, { problem, ...vars });
};

export type OperatorInputProblem = 'role' | 'department' | 'affiliation' | 'scope_and_whole' | 'no_scope' | 'scope_needed' | 'name' | 'days';

/** Roles that change accounts: for these a scope left empty by mistake must not become the whole university. */
const WRITING_ROLES: readonly Role[] = ['office', 'provisioning'];

/**
 * A role and its scope as an operator gives them (the admin API's JSON, the CLI, the console's form):
 * the role's name, department codes (a unit takes in those below it) and affiliations. The admin
 * role is always the whole university; an office or provisioning role with neither departments nor
 * affiliations is refused unless `wholeUniversity` says so on purpose (a forgotten department would
 * otherwise grant every account); the read-only roles with neither cover the whole university.
 */
export function roleAndScope(
  given: { role: unknown; departments: readonly unknown[]; affiliations: readonly unknown[]; wholeUniversity?: boolean },
  forPerson = false,
): { role: Role; scope: Scope | null } {
  const roles: readonly Role[] = forPerson ? PERSON_ROLES : ROLES;
  const role = given.role as Role;
  if (!roles.includes(role)) bad(`role must be one of ${roles.join(', ')}`, 'role');
  const codes = given.departments.map(
    (d) =>
      (typeof d === 'string' && normalizeDepartment(d)) ||
      bad(`department ${excerpt(JSON.stringify(d) ?? String(d))} is not a department code such as eng or eng/mech`, 'department', { value: excerpt(String(d)) }),
  );
  const groups = given.affiliations.map((a) => (AFFILIATIONS.includes(a as Affiliation) ? (a as Affiliation) : bad(`affiliations must be among ${AFFILIATIONS.join(', ')}`, 'affiliation')));
  const unlimited = !codes.length && !groups.length;
  if (given.wholeUniversity && !unlimited) bad('give departments or affiliations, or the whole university, not both', 'scope_and_whole');
  if (!unlimited && !takesScope(role)) bad(`the ${role} role reads university-wide figures only; it takes no departments or affiliations`, 'no_scope', { role });
  if (unlimited && WRITING_ROLES.includes(role) && !given.wholeUniversity)
    bad(`the ${role} role needs departments or affiliations (or the whole university, said on purpose)`, 'scope_needed', { role });
  return { role, scope: role === 'admin' || unlimited ? null : { departments: codes, affiliations: groups } };
}

/** An API token's name: what lists and the audit trail show of it. */
export function tokenName(value: unknown): string {
  const name = typeof value === 'string' ? value.trim() : '';
  if (!/^[\p{L}\p{N} ._-]{1,64}$/u.test(name)) bad('name must be 1 to 64 letters, digits, spaces, dots, dashes or underscores', 'name');
  return name;
}

/** When a token made now for `days` days expires. */
export function tokenExpiry(days: unknown, now: Date): Date {
  if (!Number.isInteger(days) || (days as number) < 1 || (days as number) > OPERATOR_TOKEN_MAX_DAYS)
    bad(`expiresInDays must be a whole number from 1 to ${OPERATOR_TOKEN_MAX_DAYS}`, 'days', { max: OPERATOR_TOKEN_MAX_DAYS });
  return new Date(now.getTime() + (days as number) * 86_400_000);
}

/** The largest id the operator table's id column (a serial: a 4-byte integer) holds. */
const TOKEN_ID_MAX = 2_147_483_647;

/**
 * An API token's id as a path names it (the admin API, the console's revoke button): anything but
 * a whole number the column can hold is no token at all, rather than a query the database refuses.
 */
export function apiTokenId(raw: string): number {
  const id = /^\d{1,10}$/.test(raw) ? Number(raw) : 0;
  if (id < 1 || id > TOKEN_ID_MAX) throw new DomainError('token_not_found', `no live API token with id ${excerpt(raw)}`);
  return id;
}
