// Initial passwords, printed on the account sheet handed to a new user or typed by
// help-desk staff: 16 characters from a CSPRNG (crypto.randomInt), about 94 bits.
//
// Alphabet (65 characters), chosen to be read and typed without mistakes:
// - upper case A-Z without I and O;
// - lower case a-z without l and o;
// - digits 2-9 (no 0 or 1);
// - symbols `# $ % & + - = ? @`: present and unambiguous on both US and Japanese
//   (JIS) keyboards and in common fonts. Left out: `"` `.` `\` `¥` and space
//   (forbidden by the university profile), `'` `` ` `` `,` `:` `;` (small, lost on
//   paper), `|` `!` (look like 1/l/I), `_` `~` `^` (under/overline, dead keys on
//   some layouts, `~` prints as `‾` in JIS fonts), brackets and `<>` `*` `/`
//   (shell and HTML meta characters, confused with each other when read aloud).
//
// Every password contains all four kinds, so it satisfies the 'university'
// composition rule; 16 characters satisfy both profiles' length rules (12+ and 15+).
// Each candidate is checked with checkPassword and drawn again if it fails (e.g. a
// blocklisted or Common-ID-like substring, astronomically unlikely), so the result
// always passes the policy.

import { randomInt } from 'node:crypto';
import { checkPassword, type PolicyProfile } from './password-policy.ts';
import { INITIAL_PASSWORD_CHARACTERS } from '../config/defaults.ts';

export const INITIAL_PASSWORD_LENGTH = INITIAL_PASSWORD_CHARACTERS;

const UPPER = 'ABCDEFGHJKLMNPQRSTUVWXYZ';
const LOWER = 'abcdefghijkmnpqrstuvwxyz';
const DIGITS = '23456789';
export const INITIAL_PASSWORD_SYMBOLS = '#$%&+-=?@';
const ALL = UPPER + LOWER + DIGITS + INITIAL_PASSWORD_SYMBOLS;

// A run this long could be a 10-digit Common ID; never produce one, so the password
// passes the Common ID rule for any (10-digit) Common ID, not just the one given.
const DIGIT_RUN = /[0-9]{10}/;

// A spreadsheet runs a cell starting with one of these as a formula: a password that did would be
// shown wrong (or altered by the CSV's formula guard) in the CSV an import hands out.
const FORMULA_START = /^[=+\-@]/;

const MAX_ATTEMPTS = 1000;

function pick(alphabet: string): string {
  return alphabet[randomInt(alphabet.length)]!;
}

function candidate(): string {
  const chars = [pick(UPPER), pick(LOWER), pick(DIGITS), pick(INITIAL_PASSWORD_SYMBOLS)];
  while (chars.length < INITIAL_PASSWORD_LENGTH) chars.push(pick(ALL));
  // Fisher-Yates shuffle, so the guaranteed characters sit at random positions.
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    const t = chars[i]!;
    chars[i] = chars[j]!;
    chars[j] = t;
  }
  return chars.join('');
}

/**
 * A new random initial password that satisfies checkPassword for the profile.
 * When `commonId` is given, it is also guaranteed not to contain that Common ID
 * (without it, it contains no run of 10 digits, so no 10-digit Common ID).
 */
export function generateInitialPassword(profile: PolicyProfile, commonId = ''): string {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const password = candidate();
    if (DIGIT_RUN.test(password) || FORMULA_START.test(password)) continue;
    if (checkPassword(password, { profile, commonId }).ok) return password;
  }
  throw new Error('could not generate an initial password that satisfies the policy');
}
