import { describe, expect, test } from '@jest/globals';
import { COMMON_ID_PATTERN, parseIdentifier, withRealm } from '../../src/account/common-id.ts';

const REALM = 'utac.example.ac.jp';
const ID = '0123456789';
const fullWidth = (digits: string) => digits.replace(/\d/g, (d) => String.fromCharCode(0xff10 + Number(d)));

describe('parseIdentifier', () => {
  test('accepts exactly ten ASCII digits, keeping leading zeros', () => {
    expect(parseIdentifier(ID, undefined)).toBe(ID);
    expect(parseIdentifier('9876543210', REALM)).toBe('9876543210');
    expect(parseIdentifier('0000000000', undefined)).toBe('0000000000');
  });

  test('removes surrounding white space, including the ideographic space', () => {
    expect(parseIdentifier(`  ${ID}  `, undefined)).toBe(ID);
    expect(parseIdentifier(`\t${ID}\n`, undefined)).toBe(ID);
    expect(parseIdentifier(`\u3000${ID}\u3000`, undefined)).toBe(ID);
  });

  test('rejects white space inside the digits', () => {
    expect(parseIdentifier('01234 56789', undefined)).toBeUndefined();
    expect(parseIdentifier('0123456789 @utac.example.ac.jp', REALM)).toBeUndefined();
  });

  test('turns full-width digits (typed with an IME) into ASCII', () => {
    expect(fullWidth(ID)).not.toBe(ID);
    expect(parseIdentifier(fullWidth(ID), undefined)).toBe(ID);
    expect(parseIdentifier(`${fullWidth('01234')}56789`, undefined)).toBe(ID);
    expect(parseIdentifier(`${fullWidth(ID)}＠${REALM}`, REALM)).toBe(ID);
  });

  test("other scripts' digits are not Common IDs", () => {
    // Arabic-Indic and Devanagari digits match \d only with the u flag; NFKC keeps them.
    expect(parseIdentifier('٠١٢٣٤٥٦٧٨٩', undefined)).toBeUndefined();
    expect(parseIdentifier('०१२३४५६७८९', undefined)).toBeUndefined();
  });

  test('accepts the realm suffix only when one is configured and it matches, in any case', () => {
    expect(parseIdentifier(`${ID}@${REALM}`, REALM)).toBe(ID);
    expect(parseIdentifier(`${ID}@UTAC.Example.AC.JP`, REALM)).toBe(ID);
    expect(parseIdentifier(`  ${ID}@${REALM}  `, REALM)).toBe(ID);
    expect(parseIdentifier(`${ID}@${REALM}`, undefined)).toBeUndefined();
    expect(parseIdentifier(`${ID}@${REALM}`, '')).toBeUndefined();
  });

  test('rejects other suffixes', () => {
    expect(parseIdentifier(`${ID}@other.example`, REALM)).toBeUndefined();
    expect(parseIdentifier(`${ID}@mail.${REALM}`, REALM)).toBeUndefined();
    expect(parseIdentifier(`${ID}@${REALM}.evil.example`, REALM)).toBeUndefined();
    expect(parseIdentifier(`${ID}@`, REALM)).toBeUndefined();
    expect(parseIdentifier(`@${REALM}`, REALM)).toBeUndefined();
    expect(parseIdentifier(`${ID}@${REALM}@${REALM}`, REALM)).toBeUndefined();
    expect(parseIdentifier(`${ID}@x@${REALM}`, REALM)).toBeUndefined();
  });

  test('rejects 9 and 11 digits, letters and signs', () => {
    expect(parseIdentifier('012345678', undefined)).toBeUndefined();
    expect(parseIdentifier('01234567890', undefined)).toBeUndefined();
    expect(parseIdentifier(`${fullWidth('012345678')}`, undefined)).toBeUndefined();
    expect(parseIdentifier('012345678a', undefined)).toBeUndefined();
    expect(parseIdentifier('a0123456789', undefined)).toBeUndefined();
    expect(parseIdentifier('hanako', undefined)).toBeUndefined();
    expect(parseIdentifier('-123456789', undefined)).toBeUndefined();
    expect(parseIdentifier('+123456789', undefined)).toBeUndefined();
    expect(parseIdentifier('1.23456789', undefined)).toBeUndefined();
    expect(parseIdentifier('', undefined)).toBeUndefined();
    expect(parseIdentifier('   ', undefined)).toBeUndefined();
  });

  test('rejects NUL and other control characters', () => {
    expect(parseIdentifier(`${ID}\u0000`, undefined)).toBeUndefined();
    expect(parseIdentifier(`\u0000${ID}`, undefined)).toBeUndefined();
    expect(parseIdentifier(`01234\u000056789`, undefined)).toBeUndefined();
    expect(parseIdentifier(`${ID}\u0000@${REALM}`, REALM)).toBeUndefined();
    expect(parseIdentifier(`${ID}\u200b`, undefined)).toBeUndefined();
  });

  test('rejects a 10 KB input quickly', () => {
    const started = performance.now();
    expect(parseIdentifier(`${ID}${' '.repeat(10_240)}`, undefined)).toBeUndefined();
    expect(parseIdentifier(`${' '.repeat(10_240)}${ID}`, REALM)).toBeUndefined();
    expect(parseIdentifier('1'.repeat(10_240), undefined)).toBeUndefined();
    expect(parseIdentifier(`${ID}@${'a'.repeat(10_240)}`, REALM)).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(500);
  });

  test('non-string input gives undefined and does not throw', () => {
    for (const value of [undefined, null, 123456789, 1234567890, ['0123456789'], { toString: () => ID }, true, Symbol('x')]) {
      expect(parseIdentifier(value as unknown as string, REALM)).toBeUndefined();
    }
  });
});

describe('withRealm and COMMON_ID_PATTERN', () => {
  test('withRealm appends the suffix only when configured', () => {
    expect(withRealm(ID, REALM)).toBe(`${ID}@${REALM}`);
    expect(withRealm(ID, undefined)).toBe(ID);
    expect(parseIdentifier(withRealm(ID, REALM), REALM)).toBe(ID);
  });

  test('the pattern is anchored at both ends', () => {
    expect(COMMON_ID_PATTERN.test(ID)).toBe(true);
    expect(COMMON_ID_PATTERN.test(`x${ID}`)).toBe(false);
    expect(COMMON_ID_PATTERN.test(`${ID}\n`)).toBe(false);
  });
});
