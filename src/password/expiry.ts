const DAY_MS = 24 * 3600 * 1000;

export interface Expiry {
  /** null: the password does not expire (MFA is on, or expiry is switched off). */
  expiresAt: Date | null;
  expired: boolean;
  /** Within the notice period before expiry. */
  expiringSoon: boolean;
}

/**
 * Without MFA a password expires some days after it was set (397 by default); with a second factor
 * it does not expire, as in the reference university's rules.
 */
export function passwordExpiry(passwordSetAt: Date | string, usesMfa: boolean, policy: { maxAgeDays: number; noticeDays: number }, now: Date): Expiry {
  if (usesMfa || policy.maxAgeDays === 0) return { expiresAt: null, expired: false, expiringSoon: false };
  const expiresAt = new Date(new Date(passwordSetAt).getTime() + policy.maxAgeDays * DAY_MS);
  const left = expiresAt.getTime() - now.getTime();
  return { expiresAt, expired: left <= 0, expiringSoon: left > 0 && left <= policy.noticeDays * DAY_MS };
}
