/**
 * Authentication assurance, derived from the session's amr (RFC 8176 values) and never kept as a
 * separate flag: what the person proved is what the session says they proved.
 */
export const ACR_PASSWORD = 'urn:akamon:acr:password';
export const ACR_MFA = 'urn:akamon:acr:mfa';
/**
 * Asked for by a client that needs a second factor bound to its origin (the console): a security key
 * or passkey (amr hwk or swk), which a phishing page cannot relay as it can a code. A session's own acr
 * stays ACR_MFA (the account home and SAML compare with it); the amr says which factor it was.
 */
export const ACR_PHISHING_RESISTANT = 'urn:akamon:acr:phishing-resistant';
export const ACR_VALUES = [ACR_PASSWORD, ACR_MFA, ACR_PHISHING_RESISTANT];

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

const PHISHING_RESISTANT = new Set(['hwk', 'swk']);

/** A security key or passkey was shown. */
export function phishingResistant(amr: readonly string[] | undefined): boolean {
  return (amr ?? []).some((m) => PHISHING_RESISTANT.has(m));
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
  return demand.accountRequires || demand.clientRequires || demand.requestedAcr.includes(ACR_MFA) || demand.requestedAcr.includes(ACR_PHISHING_RESISTANT);
}

/** The session's last sign-in (loginTs: a password or a factor) was within `maxAgeSeconds`. */
export function signedInWithin(loginTs: number | undefined, maxAgeSeconds: number, nowSeconds: number): boolean {
  return loginTs !== undefined && nowSeconds - loginTs <= maxAgeSeconds;
}

/**
 * A second factor shown in this session (a phishing-resistant one when `phishingResistantOnly`),
 * recently enough for a client's --mfa-max-age.
 */
export function mfaFresh(session: { amr?: readonly string[]; loginTs?: number }, maxAgeSeconds: number | null, nowSeconds: number, phishingResistantOnly = false): boolean {
  if (!(phishingResistantOnly ? phishingResistant(session.amr) : hasSecondFactor(session.amr))) return false;
  if (maxAgeSeconds === null || maxAgeSeconds === undefined) return true;
  return signedInWithin(session.loginTs, maxAgeSeconds, nowSeconds);
}
