import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import { ERROR_ANSWERS, errorAnswer } from '../../src/http/error-map.ts';
import { DatabaseUnavailableError, DomainError, OverloadedError } from '../../src/shared/errors.ts';
import { en } from '../../src/i18n/en.ts';

// Guards issue 12 point 9: every domain error code is declared once, with its status and page
// message, in src/http/error-map.ts. A code thrown somewhere but missing there would answer 500.

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Codes given to `new DomainError('code', ...)` or to a subclass's `super('code', ...)`. */
function thrownCodes(): Set<string> {
  const codes = new Set<string>();
  for (const file of sources(SRC)) {
    const text = fs.readFileSync(file, 'utf8');
    for (const match of text.matchAll(/new DomainError\(\s*'([a-z0-9_]+)'/g)) codes.add(match[1]);
    // An account's data problems (src/account/account-input.ts) are written as literals and thrown by validateAccountInput.
    if (file.endsWith(`${path.sep}account-input.ts`)) for (const match of text.matchAll(/\{ code: '([a-z_]+)', message:/g)) codes.add(match[1]);
    if (/extends (DomainError|RetryLaterError)/.test(text)) for (const match of text.matchAll(/super\(\s*'([a-z_]+)'/g)) codes.add(match[1]);
  }
  return codes;
}

describe('the error map', () => {
  test('every code is a literal, so that this test can see it', () => {
    // The one pass-through: validateAccountInput throws the first of the literal problems above.
    const PASS_THROUGH = /new DomainError\(problems\[0\]!\.code, /g;
    const computed = sources(SRC).filter((file) => /new DomainError\(\s*[^'\s]/.test(fs.readFileSync(file, 'utf8').replace(PASS_THROUGH, '')));
    expect(computed.map((file) => path.relative(SRC, file))).toEqual([]);
  });

  test('declares every code the sources throw, and nothing they do not', () => {
    const thrown = thrownCodes();
    expect([...thrown].filter((code) => !(code in ERROR_ANSWERS)).sort()).toEqual([]);
    expect(
      Object.keys(ERROR_ANSWERS)
        .filter((code) => !thrown.has(code))
        .sort(),
    ).toEqual([]);
  });

  test('every declared message exists in the catalogue and every status is an error status', () => {
    for (const [code, answer] of Object.entries(ERROR_ANSWERS)) {
      expect([code, answer.message in en]).toEqual([code, true]);
      expect(answer.status).toBeGreaterThanOrEqual(400);
    }
  });

  test('unavailability and overload are 503; an undeclared code is a 500', () => {
    expect(errorAnswer(new DatabaseUnavailableError(new Error('gone'), 5)).status).toBe(503);
    expect(errorAnswer(new OverloadedError(1)).status).toBe(503);
    expect(errorAnswer(new DomainError('made_up_here', 'x')).status).toBe(500);
  });
});
