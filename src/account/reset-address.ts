import type { Config } from '../config/config.ts';
import type { AccountRow } from './account.store.ts';

/**
 * An account's two email addresses and where a password reset by email goes: the one model that
 * the account home, the security page, the admin API, the CLI and /recover all read.
 *
 * - The university-registered address (`account.email`) is set by operators: `account create
 *   --email`, the `email` column of `account import`, the admin API. It is the student system's
 *   "E-MAIL 1" or a staff member's campus address.
 * - The recovery address (`account.recovery_email`) is the one the person registered and confirmed
 *   with a code mailed to it.
 *
 * A reset goes to the confirmed recovery address first: the person chose it and proved it. Else it
 * goes to the university-registered address, but only where the university's policy trusts it
 * (AKAMON_TRUSTED_EMAIL_DOMAINS) and the university vouches for it (email_verified): an address an
 * operator copied from a form nobody checked must not be able to take the account over.
 */

export type ResetVia = 'recovery_email' | 'university_email';

/** Why no reset by email is possible (snake_case machine codes). */
export type NoResetReason =
  /** Neither a confirmed recovery address nor a university-registered one. */
  | 'no_email'
  /** Only a university-registered address, outside the trusted domains. */
  | 'university_email_untrusted'
  /** Only a university-registered address in a trusted domain that the university does not vouch for. */
  | 'university_email_unverified';

export type PasswordResetByEmail = { readonly possible: true; readonly via: ResetVia; readonly to: string } | { readonly possible: false; readonly via: null; readonly reason: NoResetReason };

export interface AccountEmails {
  /** The address the university registered, if any. */
  readonly university: string | null;
  /** The recovery address the person registered and confirmed, if any. */
  readonly recovery: string | null;
  readonly reset: PasswordResetByEmail;
}

/** Whether the address's domain is one of `domains` or below one (mail.u-tokyo.ac.jp is below u-tokyo.ac.jp). */
export function inTrustedDomain(email: string, domains: readonly string[]): boolean {
  const domain = email.slice(email.lastIndexOf('@') + 1).toLowerCase();
  return domains.some((trusted) => domain === trusted || domain.endsWith(`.${trusted}`));
}

/** The account's addresses and where a password reset by email would go. The account's status is the caller's to check. */
export function accountEmails(account: Pick<AccountRow, 'email' | 'email_verified' | 'recovery_email' | 'recovery_email_verified_at'>, config: Pick<Config, 'trustedEmailDomains'>): AccountEmails {
  const university = account.email || null;
  // Only a confirmed address is a recovery address: nothing else may receive a reset code.
  const recovery = account.recovery_email && account.recovery_email_verified_at !== null ? account.recovery_email : null;
  return { university, recovery, reset: resetBy(university, account.email_verified, recovery, config.trustedEmailDomains) };
}

function resetBy(university: string | null, vouched: boolean, recovery: string | null, trusted: readonly string[]): PasswordResetByEmail {
  if (recovery) return { possible: true, via: 'recovery_email', to: recovery };
  if (!university) return { possible: false, via: null, reason: 'no_email' };
  if (!inTrustedDomain(university, trusted)) return { possible: false, via: null, reason: 'university_email_untrusted' };
  if (!vouched) return { possible: false, via: null, reason: 'university_email_unverified' };
  return { possible: true, via: 'university_email', to: university };
}
