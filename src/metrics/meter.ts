import type { FactorKind } from '../db/schema.ts';
import type { SigninReason } from '../audit/signin-reasons.ts';

/**
 * What the domain tells the metrics (src/metrics/prometheus.ts counts it). Every label is a closed
 * set the type names (a sign-in's reason: src/audit/signin-reasons.ts): no label ever carries a
 * person, an address, or text a client sent.
 */
export type MfaMethod = 'totp' | 'webauthn' | 'phone';
export type MfaResult = 'success' | 'wrong_code' | 'replayed' | 'webauthn_failed' | 'expired' | 'locked';
/** A password reset's steps: the code went out, the code was wrong or stale, the new password was set. */
export type ResetOutcome = 'code_sent' | 'wrong_code' | 'code_expired' | 'code_locked' | 'completed';
/**
 * Identity verification: who the verified person is (found, unknown, name_mismatch), a link made or
 * refused, and what a verified person then did (password_reissued, mfa_reset, rate_limited).
 */
export type IdvOutcome = 'found' | 'unknown' | 'name_mismatch' | 'linked' | 'link_refused' | 'password_reissued' | 'mfa_reset' | 'rate_limited';

export interface Meter {
  /** Every sign-in attempt, as the sign-in log records it (`reason`: the log's reason code). */
  signin(result: 'success' | 'failure', reason: SigninReason): void;
  /** A second factor checked at sign-in, recovery or step-up (not a factor being set up). */
  mfaVerification(method: MfaMethod, result: MfaResult): void;
  /** A factor added to an account: set up by its holder, or a token lent by the help desk. */
  factorAdded(kind: FactorKind): void;
  passwordReset(outcome: ResetOutcome): void;
  identityVerification(outcome: IdvOutcome): void;
}

/** For code run without metrics (the CLI's migrations, unit tests of a store). */
export const NO_METER: Meter = {
  signin() {},
  mfaVerification() {},
  factorAdded() {},
  passwordReset() {},
  identityVerification() {},
};
