/**
 * Authentication assurance, derived from the session's amr (RFC 8176 values) and never kept as a
 * separate flag: what the person proved is what the session says they proved.
 */
export const ACR_PASSWORD = 'urn:akamon:acr:password';
export const ACR_MFA = 'urn:akamon:acr:mfa';
export const ACR_VALUES = [ACR_PASSWORD, ACR_MFA];

/**
 * The amr of a token from the password grant given an app password (not an RFC 8176 value). An
 * app password is a random secret for one device, made on the account home (after a fresh second
 * factor when the account has one), and the only thing the grant accepts where a second factor is
 * demanded: there it stands for that factor. It never appears in a session's amr.
 */
export const AMR_APP_PASSWORD = 'app';

// idv: verified through the national ID card app (the card and its PIN: two factors upstream).
const SECOND_FACTORS = new Set(['otp', 'sms', 'tel', 'hwk', 'swk', 'idv', AMR_APP_PASSWORD]);

export function hasSecondFactor(amr: readonly string[] | undefined): boolean {
  return (amr ?? []).some((m) => SECOND_FACTORS.has(m));
}

export function acrFor(amr: readonly string[]): string {
  return hasSecondFactor(amr) ? ACR_MFA : ACR_PASSWORD;
}

/** The session's methods plus one more, each once. */
export function withMethod(amr: readonly string[] | undefined, method: string): string[] {
  return [...new Set([...(amr ?? ['pwd']), method])];
}

export interface MfaDemand {
  accountRequires: boolean;
  clientRequires: boolean;
  requestedAcr: readonly string[];
}

export function mfaDemanded(demand: MfaDemand): boolean {
  return demand.accountRequires || demand.clientRequires || demand.requestedAcr.includes(ACR_MFA);
}

/** The session's last sign-in (loginTs: a password or a factor) was within `maxAgeSeconds`. */
export function signedInWithin(loginTs: number | undefined, maxAgeSeconds: number, nowSeconds: number): boolean {
  return loginTs !== undefined && nowSeconds - loginTs <= maxAgeSeconds;
}

/** A second factor shown in this session, recently enough for a client's --mfa-max-age. */
export function mfaFresh(session: { amr?: readonly string[]; loginTs?: number }, maxAgeSeconds: number | null, nowSeconds: number): boolean {
  if (!hasSecondFactor(session.amr)) return false;
  if (maxAgeSeconds === null || maxAgeSeconds === undefined) return true;
  return signedInWithin(session.loginTs, maxAgeSeconds, nowSeconds);
}
