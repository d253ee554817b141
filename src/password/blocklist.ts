// Blocklist of common passwords shipped with Akamon (common-passwords.txt beside this file).
//
// The list is generated from well-known weak patterns (common English and Japanese
// words and names, campus words such as todai/hongo/komaba, keyboard walks on US and
// JIS layouts, words combined with the years 1950-2030, leetspeak variants, repeated
// characters and sequences). Entries are lower case, printable ASCII, one per line,
// sorted and deduplicated.
//
// The file is read once, on first use, into a Set: each lookup is O(1).

import { readFileSync } from 'node:fs';

const LIST_URL = new URL('./common-passwords.txt', import.meta.url);

let entries: ReadonlySet<string> | undefined;

function load(): ReadonlySet<string> {
  if (entries === undefined) {
    const text = readFileSync(LIST_URL, 'utf8');
    const set = new Set<string>();
    for (const line of text.split('\n')) {
      const entry = line.trim();
      if (entry !== '') set.add(entry);
    }
    entries = set;
  }
  return entries;
}

/** Canonical form used for lookups: NFC, then lower case (locale independent). */
function fold(s: string): string {
  return s.normalize('NFC').toLowerCase();
}

// Trailing characters stripped for the second lookup: digits and symbols (any
// Unicode number, punctuation, symbol or separator, and whitespace).
const STRIPPABLE = /^[\p{N}\p{P}\p{S}\p{Z}\s]$/u;

/**
 * Removes trailing digits and symbols (`password123!` -> `password`).
 * Walks back code point by code point rather than using a `/[...]+$/` regex,
 * which backtracks quadratically on long inputs.
 */
export function stripTrailingDigitsAndSymbols(s: string): string {
  let end = s.length;
  while (end > 0) {
    let start = end - 1;
    const unit = s.charCodeAt(start);
    if (unit >= 0xdc00 && unit <= 0xdfff && start > 0) {
      const lead = s.charCodeAt(start - 1);
      if (lead >= 0xd800 && lead <= 0xdbff) start -= 1;
    }
    if (!STRIPPABLE.test(s.slice(start, end))) break;
    end = start;
  }
  return s.slice(0, end);
}

/**
 * True when the password is a common password: its lower-case form is on the list,
 * or it is on the list once its trailing digits and symbols are removed
 * (`Password123!`, `Sakura2024#`, `P@ssw0rd!!`).
 */
export function isBlocklisted(password: string): boolean {
  const list = load();
  const folded = fold(password);
  if (list.has(folded)) return true;
  const stripped = stripTrailingDigitsAndSymbols(folded);
  return stripped !== '' && stripped !== folded && list.has(stripped);
}

/** Number of entries on the shipped list (for diagnostics and tests). */
export function blocklistSize(): number {
  return load().size;
}
