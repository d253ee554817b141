import { generateSecret, generateURI, verify } from 'otplib';

export const TOTP_PERIOD = 30;
export const TOTP_DIGITS = 6;

export function newTotpSecret(): string {
  return generateSecret();
}

/** The otpauth:// URI an authenticator app reads from the QR code. */
export function totpUri(secret: string, accountName: string, issuer: string): string {
  return generateURI({ secret, label: accountName, issuer, digits: TOTP_DIGITS, period: TOTP_PERIOD });
}

/**
 * Checks a code at `now`, accepting one time step of clock drift either way (RFC 6238 section 5.2).
 * Returns the matching time step, which the caller must consume so the code never works twice.
 */
export async function matchTotp(secret: string, code: string, now: Date): Promise<number | undefined> {
  if (!/^\d{6}$/.test(code)) return undefined;
  const result = await verify({ secret, token: code, epoch: Math.floor(now.getTime() / 1000), epochTolerance: TOTP_PERIOD, period: TOTP_PERIOD, digits: TOTP_DIGITS });
  // The step of the matching code: the current one shifted by the drift that matched.
  return result.valid ? Math.floor(now.getTime() / 1000 / TOTP_PERIOD) + result.delta : undefined;
}

/** What a person typed: spaces and hyphens (as apps group the digits) and full-width digits are fine. */
export function normalizeCode(input: unknown): string {
  return typeof input === 'string' ? input.normalize('NFKC').replace(/[\s-]/g, '').slice(0, 16) : '';
}
