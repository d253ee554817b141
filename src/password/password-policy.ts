// Password policy: pure checks, no I/O apart from the blocklist file read once.
//
// Profiles:
// - 'university' (default): the University of Tokyo rules. 12 to 64 characters, at
//   least 3 of the 4 kinds (A-Z, a-z, 0-9, ASCII symbols), no whitespace and none of
//   `"` `.` `\` `¥`.
// - 'nist': NIST SP 800-63B-4. 15 to 64 characters, no composition rules, every
//   character allowed (spaces included).
// Both: no control characters (C0, DEL, C1: no keyboard enters them into a password
// field, and the other systems that receive the password refuse them), must not equal or contain the Common ID,
// must not equal the current password, must not be a common password (blocklist).
//
// Lengths are counted in Unicode code points after NFC normalisation, so an emoji
// counts as one character and `é` counts as one whether typed precomposed or not.

import { isBlocklisted } from './blocklist.ts';
import { hasControlCharacter } from '../shared/text.ts';

export type PolicyProfile = 'university' | 'nist';

export type PolicyViolation = 'too_short' | 'too_long' | 'too_few_character_kinds' | 'forbidden_character' | 'control_character' | 'same_as_common_id' | 'same_as_current' | 'blocklisted';

export interface PolicyLimits {
  minLength: number;
  maxLength: number;
  /** Minimum number of character kinds; 0 when the profile has no composition rule. */
  minKinds: number;
}

export interface PolicyResult {
  ok: boolean;
  /** Every violated rule, in a stable order (the order of PolicyViolation). */
  violations: PolicyViolation[];
  /** The numbers the pages need to explain the violations. */
  limits: PolicyLimits;
}

export interface PolicyContext {
  profile: PolicyProfile;
  /** The account name (at UTokyo the 10-digit Common ID), with or without `@realm`. */
  commonId: string;
  currentPassword?: string;
}

export const DEFAULT_PROFILE: PolicyProfile = 'university';

const LIMITS: Readonly<Record<PolicyProfile, Readonly<PolicyLimits>>> = {
  university: { minLength: 12, maxLength: 64, minKinds: 3 },
  nist: { minLength: 15, maxLength: 64, minKinds: 0 },
};

export const POLICY_PROFILES: readonly PolicyProfile[] = ['university', 'nist'];

export function isPolicyProfile(value: unknown): value is PolicyProfile {
  return value === 'university' || value === 'nist';
}

/** The limits of a profile (a fresh copy). */
export function policyLimits(profile: PolicyProfile): PolicyLimits {
  const limits = LIMITS[profile];
  if (limits === undefined) throw new RangeError(`unknown password policy profile: ${String(profile)}`);
  return { ...limits };
}

/**
 * The one normalisation applied to passwords, by the policy and by the hasher:
 * Unicode NFC. (Not NFKC: NFKC would fold full-width characters into ASCII and
 * change passwords users already have.)
 */
export function normalizePassword(p: string): string {
  return p.normalize('NFC');
}

function countCodePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

// NFC composes at most a few code units into one (for example Hangul L+V+T jamo,
// 3 -> 1), so a string longer than this many UTF-16 units per allowed character
// cannot come back within the limit: it is reported as too long without
// normalising it (cheap guard against huge inputs before hashing). There is no
// shortcut the other way: NFC can also expand a character (U+0344 -> 2 code points).
const MAX_UNITS_PER_CHAR = 16;

/**
 * True when the password has more than `max` code points after NFC normalisation.
 * Stops counting as soon as the limit is passed.
 */
export function exceedsLength(password: string, max: number): boolean {
  if (password.length > max * MAX_UNITS_PER_CHAR + MAX_UNITS_PER_CHAR) return true;
  let n = 0;
  for (const _ of normalizePassword(password)) {
    if (++n > max) return true;
  }
  return false;
}

// Character kinds for the 'university' profile. Only ASCII counts: many campus
// systems that receive the same password (or must accept it later) are ASCII-only,
// so non-ASCII letters and digits (é, Ａ, ア, ٣) are allowed but count as no kind.
// The symbol kind is printable ASCII punctuation other than the forbidden `"`, `.`
// and `\`: a forbidden character never helps a password meet the kinds rule, so
// removing it never turns a valid-looking composition into an invalid one.
const UPPER = /[A-Z]/;
const LOWER = /[a-z]/;
const DIGIT = /[0-9]/;
const SYMBOL = /[!#$%&'()*+,\-/:;<=>?@[\]^_`{|}~]/;

/** Number of the 4 kinds (upper, lower, digit, ASCII symbol) present. */
export function countCharacterKinds(password: string): number {
  let kinds = 0;
  if (UPPER.test(password)) kinds++;
  if (LOWER.test(password)) kinds++;
  if (DIGIT.test(password)) kinds++;
  if (SYMBOL.test(password)) kinds++;
  return kinds;
}

// Forbidden in the 'university' profile: any Unicode whitespace (\s covers the
// ideographic space U+3000, NBSP, ...), `"`, `.`, `\` and `¥` (U+00A5, which JIS
// keyboards and fonts confuse with the backslash). Tab and line breaks are control
// characters, reported by their own rule in every profile, so they are left out here.
const FORBIDDEN = /[[\s".\\\u00A5]--\p{Cc}]/v;

function fold(s: string): string {
  return normalizePassword(s).toLowerCase();
}

/**
 * True when the password equals or contains the Common ID, case-insensitively.
 * A Common ID given with a realm (`1234567890@example.ac.jp`) is also checked
 * without it, so a password containing either form is caught.
 */
function containsCommonId(folded: string, commonId: string): boolean {
  const id = fold(commonId.trim());
  if (id === '') return false;
  const candidates = [id];
  const at = id.indexOf('@');
  if (at > 0) candidates.push(id.slice(0, at));
  return candidates.some((c) => folded.includes(c));
}

/**
 * Checks a new password against the profile's rules and reports every violated
 * rule, not just the first.
 */
export function checkPassword(password: string, context: { profile: PolicyProfile; commonId: string; currentPassword?: string }): PolicyResult {
  const profile: PolicyProfile = context.profile ?? DEFAULT_PROFILE;
  const limits = policyLimits(profile);
  const normalized = normalizePassword(password);
  const length = countCodePoints(normalized);
  const violations: PolicyViolation[] = [];

  if (length < limits.minLength) violations.push('too_short');
  if (length > limits.maxLength) violations.push('too_long');
  if (profile === 'university') {
    if (countCharacterKinds(normalized) < limits.minKinds) violations.push('too_few_character_kinds');
    if (FORBIDDEN.test(normalized)) violations.push('forbidden_character');
  }
  if (hasControlCharacter(normalized)) violations.push('control_character');
  if (containsCommonId(normalized.toLowerCase(), context.commonId ?? '')) violations.push('same_as_common_id');
  if (context.currentPassword !== undefined && normalizePassword(context.currentPassword) === normalized) {
    violations.push('same_as_current');
  }
  if (isBlocklisted(normalized)) violations.push('blocklisted');

  return { ok: violations.length === 0, violations, limits };
}
