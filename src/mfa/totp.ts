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

export interface TotpShape {
  digits: number;
  period: number;
}

export const APP_SHAPE: TotpShape = { digits: TOTP_DIGITS, period: TOTP_PERIOD };

/**
 * Checks a code at `now`, accepting one time step of clock drift either way (RFC 6238 section 5.2).
 * Returns the start (epoch seconds) of the matching time step, which the caller must consume so
 * the code never works twice; start times compare across factors with different periods.
 */
export async function matchTotp(secret: string, code: string, now: Date, shape: TotpShape = APP_SHAPE): Promise<number | undefined> {
  if (code.length !== shape.digits || !/^\d+$/.test(code)) return undefined;
  const epoch = Math.floor(now.getTime() / 1000);
  const result = await verify({ secret, token: code, epoch, epochTolerance: shape.period, period: shape.period, digits: shape.digits });
  return result.valid ? (Math.floor(epoch / shape.period) + result.delta) * shape.period : undefined;
}

/** An RFC 4648 base32 secret (letters and digits 2-7, optional padding). */
export function isBase32Secret(value: string): boolean {
  return /^[A-Z2-7]{16,128}=*$/.test(value);
}

/** Whether the TOTP library can use this secret (it wants at least 16 whole bytes). */
export async function totpUsable(secret: string): Promise<boolean> {
  try {
    await matchTotp(secret, '000000', new Date());
    return true;
  } catch {
    return false;
  }
}

/** What a person typed: spaces and hyphens (as apps group the digits) and full-width digits are fine. */
export function normalizeCode(input: unknown): string {
  return typeof input === 'string' ? input.normalize('NFKC').replace(/[\s-]/g, '').slice(0, 16) : '';
}
