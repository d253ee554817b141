/** A Common ID is exactly ten ASCII digits. */
export const COMMON_ID_PATTERN = /^\d{10}$/;

/**
 * Reads what a person typed as their account name: full-width digits (typed with a Japanese IME)
 * become ASCII, surrounding spaces go, and the realm suffix ("@utac.example.ac.jp") is accepted.
 * Returns undefined when the result is not a Common ID.
 */
export function parseIdentifier(input: string, realmSuffix: string | undefined): string | undefined {
  if (typeof input !== 'string' || input.length > 256) return undefined;
  let value = input.normalize('NFKC').trim().toLowerCase();
  const at = value.lastIndexOf('@');
  if (at !== -1) {
    if (!realmSuffix || value.slice(at + 1) !== realmSuffix) return undefined;
    value = value.slice(0, at);
  }
  return COMMON_ID_PATTERN.test(value) ? value : undefined;
}

export function withRealm(commonId: string, realmSuffix: string | undefined): string {
  return realmSuffix ? `${commonId}@${realmSuffix}` : commonId;
}
