import { describe, expect, test } from '@jest/globals';
import { en, type MessageKey } from '../../src/i18n/en.ts';
import { ja } from '../../src/i18n/ja.ts';
import { isLocale, negotiateLocale, translator } from '../../src/i18n/i18n.ts';

const placeholders = (text: string): string[] => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('message catalogues', () => {
  const enKeys = Object.keys(en).sort();
  const jaKeys = Object.keys(ja).sort();

  test('en and ja have exactly the same keys', () => {
    expect(enKeys.length).toBeGreaterThan(50);
    expect(jaKeys).toEqual(enKeys);
  });

  test('no message is empty or only white space', () => {
    for (const [locale, messages] of [
      ['en', en],
      ['ja', ja],
    ] as const) {
      const empty = Object.entries(messages)
        .filter(([, text]) => typeof text !== 'string' || text.trim() === '')
        .map(([key]) => `${locale}:${key}`);
      expect(empty).toEqual([]);
    }
  });

  test('each pair uses the same {placeholders}', () => {
    const mismatched = enKeys
      .filter((key) => placeholders(en[key as MessageKey]).join(',') !== placeholders(ja[key as MessageKey]).join(','))
      .map((key) => `${key}: en {${placeholders(en[key as MessageKey])}} ja {${placeholders(ja[key as MessageKey])}}`);
    expect(mismatched).toEqual([]);
  });

  test('the catalogues are not simply the same text', () => {
    expect(ja['identifier.title']).not.toBe(en['identifier.title']);
    expect(en['lang.name']).toBe('English');
    expect(ja['lang.name']).toBe('日本語');
  });
});

describe('translator', () => {
  test('returns the text of the chosen locale', () => {
    expect(translator('en')('common.back')).toBe(en['common.back']);
    expect(translator('ja')('common.back')).toBe(ja['common.back']);
  });

  test('substitutes variables, numbers included, everywhere they occur', () => {
    const t = translator('en');
    expect(t('common.request_id', { id: 'abc-123' })).toBe('Reference: abc-123');
    expect(t('password.locked', { minutes: 7 })).toBe('Too many failed attempts. Wait 7 minutes, then try again.');
    const long = t('password_change.long_warning', { max: 8, systems: 'Mail', length: 15 });
    expect(long).toContain('at most 8 characters: Mail');
    expect(long).toContain('15 characters long');
    expect(long).not.toMatch(/\{\w+\}/);
    expect(translator('ja')('common.request_id', { id: 'X9' })).toBe('問い合わせ番号: X9');
  });

  test('leaves placeholders without a variable as they are', () => {
    const t = translator('en');
    expect(t('password_change.long_warning', { max: 8 })).toContain('{systems}');
    expect(t('password_change.long_warning', { max: 8 })).toContain('{length}');
    expect(t('common.request_id', {})).toBe('Reference: {id}');
    expect(t('common.request_id')).toBe('Reference: {id}');
  });

  test('a variable value containing braces is not substituted again', () => {
    expect(translator('en')('common.request_id', { id: '{id}' })).toBe('Reference: {id}');
  });
});

describe('negotiateLocale', () => {
  test('ui_locales comes first, using the first supported tag and its base language', () => {
    expect(negotiateLocale('en', 'ja', 'ja')).toBe('en');
    expect(negotiateLocale('ja', 'en', 'en')).toBe('ja');
    expect(negotiateLocale('fr de en-GB ja', 'ja', 'ja')).toBe('en');
    expect(negotiateLocale('EN-us', undefined, 'ja')).toBe('en');
  });

  test('then the cookie', () => {
    expect(negotiateLocale(undefined, 'en', 'ja')).toBe('en');
    expect(negotiateLocale('fr de', 'en', 'ja')).toBe('en');
    expect(negotiateLocale('', 'ja', 'en')).toBe('ja');
  });

  test('an unsupported cookie value is ignored', () => {
    expect(negotiateLocale(undefined, 'fr', 'en')).toBe('en');
    expect(negotiateLocale(undefined, 'EN', 'ja')).toBe('ja');
  });

  test('then Accept-Language, by q-value', () => {
    expect(negotiateLocale(undefined, undefined, 'en')).toBe('en');
    expect(negotiateLocale(undefined, undefined, 'en-US,en;q=0.9')).toBe('en');
    expect(negotiateLocale(undefined, undefined, 'fr;q=1, en;q=0.8, ja;q=0.9')).toBe('ja');
    expect(negotiateLocale(undefined, undefined, 'fr;q=1, en;q=0.9, ja;q=0.8')).toBe('en');
    expect(negotiateLocale(undefined, undefined, 'ja;q=0.1, en')).toBe('en');
  });

  test('equal q-values keep the header order', () => {
    expect(negotiateLocale(undefined, undefined, 'en, ja')).toBe('en');
    expect(negotiateLocale(undefined, undefined, 'ja, en')).toBe('ja');
    expect(negotiateLocale(undefined, undefined, 'en;q=0.5, ja;q=0.5')).toBe('en');
  });

  test('q=0 means "not acceptable"', () => {
    expect(negotiateLocale(undefined, undefined, 'ja;q=0, en;q=0.1')).toBe('en');
    expect(negotiateLocale(undefined, undefined, 'en;q=0')).toBe('ja');
  });

  test('defaults to Japanese', () => {
    expect(negotiateLocale(undefined, undefined, undefined)).toBe('ja');
    expect(negotiateLocale('', '', '')).toBe('ja');
    expect(negotiateLocale(undefined, undefined, 'fr, de;q=0.9')).toBe('ja');
  });

  test('malformed headers do not throw', () => {
    const malformed = [
      ';;;',
      ',,,',
      'q=0.5',
      'en;q=abc',
      'en;q=',
      ';q=1',
      '*',
      '\u0000',
      'en;;;q=1;;',
      ' , ;q=0.9 , ',
      'x'.repeat(100_000),
      Array.from({ length: 5000 }, () => 'fr;q=0.5').join(','),
      'en;q=1e999',
      'en;q=-1',
    ];
    for (const header of malformed) {
      expect(() => negotiateLocale(header, header, header)).not.toThrow();
      expect(isLocale(negotiateLocale(undefined, undefined, header))).toBe(true);
    }
    // An unparsable q-value counts as 0, so it loses to a plain tag.
    expect(negotiateLocale(undefined, undefined, 'en;q=abc, ja;q=0.1')).toBe('ja');
  });
});

describe('plural forms (issue 14 point 7)', () => {
  test('English says 1 minute and 2 minutes; Japanese has one form', () => {
    const en = translator('en');
    expect(en('mfa.locked', { minutes: 1 })).toBe('Too many wrong codes. Wait 1 minute, then try again.');
    expect(en('mfa.locked', { minutes: 2 })).toBe('Too many wrong codes. Wait 2 minutes, then try again.');
    expect(en('idv.recover_limited', { hours: 1 })).toContain('Wait about 1 hour,');
    expect(en('idv.recover_limited', { hours: 24 })).toContain('Wait about 24 hours,');
    expect(translator('ja')('mfa.locked', { minutes: 1 })).not.toMatch(/[{}|]/);
  });

  test('no English text leaves the plural to the reader with "(s)"', () => {
    expect(Object.entries(en).filter(([, text]) => /\w\(s\)/.test(text))).toEqual([]);
  });
});
