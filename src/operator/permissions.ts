import type { Affiliation } from '../db/schema.ts';
import { inDepartments } from '../account/department.ts';
import { DomainError } from '../shared/errors.ts';

/**
 * Who may do what, in one table: the admin API, the CLI (a client of that API), SCIM, the metrics
 * endpoint and the console all ask `authorize` and `inScope`, so a role means the same on every path.
 *
 * - admin: the university administrator (everything, the whole university).
 * - office: a faculty or personnel office: the help-desk tasks on the accounts of its scope.
 * - helpdesk: looks accounts and their sign-ins up, changes nothing.
 * - auditor: reads the audit trail, the sign-in log and the dashboard, and no account.
 * - provisioning (API tokens only): a student or personnel system feeding accounts (SCIM): creates,
 *   updates and ends the accounts of its scope, and nothing else.
 * - monitoring (API tokens only): a Prometheus server reading the metrics.
 */
export const PERSON_ROLES = ['admin', 'office', 'helpdesk', 'auditor'] as const;
export const ROLES = [...PERSON_ROLES, 'provisioning', 'monitoring'] as const;
export type Role = (typeof ROLES)[number];

export const PERMISSIONS = {
  'account.read': ['admin', 'office', 'helpdesk', 'provisioning'],
  'account.create': ['admin', 'office', 'provisioning'],
  'account.update': ['admin', 'office', 'provisioning'],
  /** Reissuing the initial password, unlocking, resetting MFA. */
  'account.credentials': ['admin', 'office'],
  /** Suspending, reactivating, revoking now or on a date. */
  'account.status': ['admin', 'office', 'provisioning'],
  'account.unlink_idv': ['admin'],
  'education.record': ['admin', 'office'],
  /** Lending and collecting hardware tokens (to accounts of the scope). */
  'token.lend': ['admin', 'office'],
  'token.read': ['admin', 'office'],
  'token.load': ['admin'],
  'client.read': ['admin'],
  'client.write': ['admin'],
  'keys.rotate': ['admin'],
  'audit.read': ['admin', 'auditor'],
  'signins.read': ['admin', 'office', 'helpdesk', 'auditor'],
  'dashboard.read': ['admin', 'auditor'],
  'operator.manage': ['admin'],
  'metrics.read': ['admin', 'monitoring'],
} as const satisfies Record<string, readonly Role[]>;
export type Permission = keyof typeof PERMISSIONS;

/**
 * The accounts an operator works on: departments (a unit takes in the units below it) and
 * affiliations; an empty list does not limit. Null: the whole university.
 */
export interface Scope {
  departments: readonly string[];
  affiliations: readonly Affiliation[];
}

/** Someone acting as an operator: an API token or a person signed in to the console. */
export interface Principal {
  /** Who, as the audit trail names them: `operator:<token name>` or `console:<Common ID>`. */
  actor: string;
  role: Role;
  /** Null for the whole university (always so for admin). */
  scope: Scope | null;
}

/**
 * What only a whole-university principal may read: counts over every account (the dashboard's
 * adoption, denials, failures and revocations; the metrics) that no scope narrows, so a scoped
 * auditor would learn of accounts outside the scope from them.
 */
const WHOLE_UNIVERSITY_ONLY: ReadonlySet<Permission> = new Set(['dashboard.read', 'metrics.read']);

/** Whether a scope means anything to a role: false when all it may do is read university-wide figures (monitoring). */
export function takesScope(role: Role): boolean {
  return Object.entries(PERMISSIONS).some(([permission, roles]) => (roles as readonly Role[]).includes(role) && !WHOLE_UNIVERSITY_ONLY.has(permission as Permission));
}

export function may(principal: Principal, permission: Permission): boolean {
  if (principal.scope && WHOLE_UNIVERSITY_ONLY.has(permission)) return false;
  return (PERMISSIONS[permission] as readonly Role[]).includes(principal.role);
}

/** Throws `forbidden` (403) unless the role grants the permission (and, for university-wide figures, the principal is unscoped). */
export function authorize(principal: Principal, permission: Permission): void {
  if (may(principal, permission)) return;
  const why = principal.scope && WHOLE_UNIVERSITY_ONLY.has(permission) ? 'these figures are university-wide and this operator is scoped' : `the ${principal.role} role may not do this`;
  // The permission named: the console tells the operator which roles may (console-session.ts).
  throw new DomainError('forbidden', `${why} (${permission})`, { permission });
}

/** Whether an account (its department and affiliation) is within the operator's scope. */
export function inScope(scope: Scope | null, account: { department: string | null; affiliation: Affiliation }): boolean {
  if (!scope) return true;
  if (scope.departments.length && !inDepartments(account.department, scope.departments)) return false;
  return !scope.affiliations.length || scope.affiliations.includes(account.affiliation);
}
