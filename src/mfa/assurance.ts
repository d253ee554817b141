/**
 * Authentication assurance, derived from the session's amr (RFC 8176 values) and never kept as a
 * separate flag: what the person proved is what the session says they proved.
 */
export const ACR_PASSWORD = 'urn:akamon:acr:password';
export const ACR_MFA = 'urn:akamon:acr:mfa';
export const ACR_VALUES = [ACR_PASSWORD, ACR_MFA];

// idv: verified through the national ID card app (the card and its PIN: two factors upstream).
const SECOND_FACTORS = new Set(['otp', 'sms', 'tel', 'hwk', 'swk', 'idv']);

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

/** A second factor shown in this session, recently enough for a client's --mfa-max-age. */
export function mfaFresh(session: { amr?: readonly string[]; loginTs?: number }, maxAgeSeconds: number | null, nowSeconds: number): boolean {
  if (!hasSecondFactor(session.amr)) return false;
  if (maxAgeSeconds === null || maxAgeSeconds === undefined) return true;
  return session.loginTs !== undefined && nowSeconds - session.loginTs <= maxAgeSeconds;
}
