import { inDepartments } from '../account/department.ts';
import type { AccountStatus, Affiliation } from '../db/schema.ts';

/** Why a client is closed to an account (the person sees it in plain words, code 53003). */
export type DenialReason = 'account_denied' | 'status_not_allowed' | 'affiliation_not_allowed' | 'department_not_allowed' | 'education_required' | 'salvage_over' | 'mfa_required';

export interface ClientRules {
  allowedAffiliations: readonly Affiliation[] | null;
  /** null: every department; else these departments and the ones below them. */
  allowedDepartments: readonly string[] | null;
  allowedStatuses: readonly AccountStatus[];
  requireEducation: boolean;
  /** The client demands a second factor (its --require-mfa, or its MFA rollout has reached enforcement). */
  requireMfa: boolean;
  /** Revoked accounts may use it during their salvage period (a data-export service). */
  salvage: boolean;
}

export interface AccessFacts {
  status: AccountStatus;
  affiliation: Affiliation;
  department: string | null;
  /** The account's entry in this client's explicit lists, if any. */
  listed: 'allow' | 'deny' | null;
  /** This academic year's security education is passed. */
  educationPassed: boolean;
  /** The account is revoked and still inside its data-salvage period. */
  salvageOpen: boolean;
  /** The account itself demands a second factor (the person applied, or an operator set it). */
  accountRequiresMfa: boolean;
  /**
   * Whether the sign-in behind the request showed a second factor; undefined while the sign-in is
   * still under way (an authorization), where the MFA steps ask for one instead of refusing.
   */
  secondFactor: boolean | undefined;
}

export type AccessDecision = { allowed: true } | { allowed: false; reason: DenialReason };

/**
 * The one place that decides who may use a client; the sign-in steps, token checks and the
 * service directory all ask it, so they cannot drift apart. A deny-list entry wins over
 * everything; an allow-list entry lets an account in whatever its affiliation and department, but
 * not past the status or education rules. Affiliation and department rules both apply: "faculty
 * of eng" is allowed affiliations [faculty] with allowed departments [eng]. A salvage client admits revoked accounts during their salvage
 * period (they reach it only through identity verification). A sign-in that is over (a token,
 * the password grant) without a second factor is refused where the client or the account demands
 * one: the token outlives the moment the person could have been asked.
 */
export function evaluateAccess(rules: ClientRules, facts: AccessFacts): AccessDecision {
  if (facts.listed === 'deny') return { allowed: false, reason: 'account_denied' };
  // At a salvage client a revoked account is judged by its salvage period instead of the status rule.
  if (rules.salvage && facts.status === 'revoked' && !rules.allowedStatuses.includes('revoked')) {
    if (!facts.salvageOpen) return { allowed: false, reason: 'salvage_over' };
  } else if (!rules.allowedStatuses.includes(facts.status)) {
    return { allowed: false, reason: 'status_not_allowed' };
  }
  if (rules.allowedAffiliations && facts.listed !== 'allow' && !rules.allowedAffiliations.includes(facts.affiliation)) {
    return { allowed: false, reason: 'affiliation_not_allowed' };
  }
  if (rules.allowedDepartments && facts.listed !== 'allow' && !inDepartments(facts.department, rules.allowedDepartments)) {
    return { allowed: false, reason: 'department_not_allowed' };
  }
  if (facts.secondFactor === false && (rules.requireMfa || facts.accountRequiresMfa)) return { allowed: false, reason: 'mfa_required' };
  if (rules.requireEducation && !facts.educationPassed) return { allowed: false, reason: 'education_required' };
  return { allowed: true };
}
