import { describe, expect, test } from '@jest/globals';
import { readProfile } from '../../src/account/account-fields.ts';
import type { AccountRow } from '../../src/account/account.store.ts';
import { inDepartments, normalizeDepartment } from '../../src/account/department.ts';
import { accountClaims, SCOPE_CLAIMS, scopeOfClaim } from '../../src/oidc/claims.ts';
import { carriedForms, requestedForms } from '../../src/oidc/claims-locales.ts';
import { eduPersonScope } from '../../src/account/eduperson.ts';

// The composition of claims from an account (src/oidc/claims.ts) and the checks of the fields that
// feed them (src/account/account-fields.ts); the HTTP side is test/e2e/claims.test.ts.

const base = {
  id: '7d3c5a43-54c4-4f4f-9a59-6f0d1ad0b0a1',
  common_id: '0123456789',
  name: 'YAMADA Hanako',
  email: 'hanako@mail.example.ac.jp',
  email_verified: true,
  family_name: null,
  given_name: null,
  family_name_ja: null,
  given_name_ja: null,
  family_name_kana: null,
  given_name_kana: null,
  department: null,
  entitlements: [],
  affiliation: 'student',
  status: 'active',
  recovery_email: null,
  recovery_email_verified_at: null,
} as unknown as AccountRow;

const named = {
  ...base,
  family_name: 'Yamada',
  given_name: 'Hanako',
  family_name_ja: '山田',
  given_name_ja: '花子',
  family_name_kana: 'ヤマダ',
  given_name_kana: 'ハナコ',
} as AccountRow;

const settings = { eduPersonScope: 'utac.example.ac.jp' };

describe('name claims', () => {
  test('every form under its language tag; untagged, the name as imported and the Latin parts', () => {
    expect(accountClaims(named, [], settings)).toMatchObject({
      name: 'YAMADA Hanako',
      family_name: 'Yamada',
      given_name: 'Hanako',
      'name#en': 'Hanako Yamada',
      'name#ja-Jpan-JP': '山田 花子',
      'name#ja-Kana-JP': 'ヤマダ ハナコ',
      'family_name#en': 'Yamada',
      'family_name#ja-Jpan-JP': '山田',
      'family_name#ja-Kana-JP': 'ヤマダ',
      'given_name#ja-Kana-JP': 'ハナコ',
    });
  });

  test('claims_locales chooses the untagged form, falling back past forms the account lacks', () => {
    expect(accountClaims(named, ['ja-Jpan-JP'], settings)).toMatchObject({ name: '山田 花子', family_name: '山田', given_name: '花子', 'name#en': 'Hanako Yamada' });
    expect(accountClaims(named, ['ja-Kana-JP'], settings)).toMatchObject({ name: 'ヤマダ ハナコ', family_name: 'ヤマダ' });
    expect(accountClaims(named, ['en'], settings)).toMatchObject({ name: 'Hanako Yamada', family_name: 'Yamada' });
    const kanjiOnly = { ...base, family_name_ja: '山田', given_name_ja: '花子' } as AccountRow;
    expect(accountClaims(kanjiOnly, ['en', 'ja-Jpan-JP'], settings)).toMatchObject({ name: '山田 花子', family_name: '山田' });
    // Asked for Latin script and none is there: the name as imported, the parts in Japanese script.
    expect(accountClaims(kanjiOnly, ['en'], settings)).toMatchObject({ name: 'YAMADA Hanako', family_name: '山田', given_name: '花子' });
  });

  test('an account with only a name keeps it, and nothing else appears', () => {
    const claims = accountClaims(base, ['ja-Jpan-JP'], settings);
    expect(claims.name).toBe('YAMADA Hanako');
    const present = Object.entries(claims).filter(([key, value]) => /^(name|family_name|given_name)(#|$)/.test(key) && value !== undefined);
    expect(present).toEqual([['name', 'YAMADA Hanako']]);
  });

  test('every claim composed is one a scope releases (or the provider would drop it)', () => {
    const released = new Set(Object.values(SCOPE_CLAIMS).flat());
    const composed = Object.keys(accountClaims({ ...named, department: 'eng', entitlements: ['urn:x:y'] } as AccountRow, [], settings));
    expect(composed.filter((claim) => !released.has(claim as never))).toEqual([]);
  });
});

describe('the scope of a claim, for the consent page', () => {
  test('each claim goes with its scope, a language-tagged claim with its base claim; a claim of no scope has none', () => {
    for (const [scope, claims] of Object.entries(SCOPE_CLAIMS)) for (const claim of claims) expect(scopeOfClaim(claim)).toBe(scope);
    expect(scopeOfClaim('family_name#ja-Kana-JP')).toBe('profile');
    expect(scopeOfClaim('department#ja')).toBe('profile');
    expect(scopeOfClaim('email_verified')).toBe('email');
    for (const claim of ['shoe_size', 'shoe_size#ja', 'sid', 'iss', '', '#ja', 'eduperson']) expect(scopeOfClaim(claim)).toBeUndefined();
  });
});

describe('claims_locales', () => {
  test.each([
    ['ja', ['ja-Jpan-JP']],
    ['ja-JP', ['ja-Jpan-JP']],
    ['ja-Kana-JP en', ['ja-Kana-JP', 'en']],
    ['ja-Hira ja-Jpan', ['ja-Kana-JP', 'ja-Jpan-JP']],
    ['en-US en-GB ja', ['en', 'ja-Jpan-JP']],
    ['ja-Latn', ['en']],
    ['fr de-CH', []],
    ['', []],
  ])('%j asks for %j', (value, forms) => expect(requestedForms(value)).toEqual(forms));

  test('a token carries only known forms', () => {
    expect(carriedForms({ claims: { claims_locales: ['ja-Kana-JP', 'xx', 7] } })).toEqual(['ja-Kana-JP']);
    expect(carriedForms({ claims: { id_token: {} } })).toEqual([]);
    expect(carriedForms(undefined)).toEqual([]);
  });
});

describe('email_verified', () => {
  test('the university vouches for the address, or the person confirmed this very address for recovery', () => {
    expect(accountClaims(base, [], settings)).toMatchObject({ email: 'hanako@mail.example.ac.jp', email_verified: true });
    const typedIn = { ...base, email_verified: false } as AccountRow;
    expect(accountClaims(typedIn, [], settings)).toMatchObject({ email_verified: false });
    const confirmed = { ...typedIn, recovery_email: 'Hanako@Mail.example.ac.jp', recovery_email_verified_at: new Date() } as AccountRow;
    expect(accountClaims(confirmed, [], settings)).toMatchObject({ email_verified: true });
    // Another confirmed address proves nothing about this one, and is never released.
    const other = { ...typedIn, recovery_email: 'me@example.com', recovery_email_verified_at: new Date() } as AccountRow;
    expect(accountClaims(other, [], settings)).toMatchObject({ email: 'hanako@mail.example.ac.jp', email_verified: false });
    expect(Object.values(accountClaims(other, [], settings))).not.toContain('me@example.com');
  });

  test('no address, no email claims', () => {
    const claims = accountClaims({ ...base, email: null } as AccountRow, [], settings);
    expect(claims.email).toBeUndefined();
    expect(claims.email_verified).toBeUndefined();
  });
});

describe('eduPerson', () => {
  test.each([
    ['student', ['student', 'member']],
    ['faculty', ['faculty', 'employee', 'member']],
    ['staff', ['staff', 'employee', 'member']],
    ['alumni', ['alum']],
    ['guest', ['affiliate']],
  ])('%s is %j, scoped to the realm', (affiliation, values) => {
    const claims = accountClaims({ ...base, affiliation, entitlements: ['urn:mace:dir:entitlement:common-lib-terms'] } as AccountRow, [], settings);
    expect(claims).toMatchObject({
      eduperson_principal_name: '0123456789@utac.example.ac.jp',
      eduperson_affiliation: values,
      eduperson_scoped_affiliation: values.map((v) => `${v}@utac.example.ac.jp`),
      eduperson_entitlement: ['urn:mace:dir:entitlement:common-lib-terms'],
    });
  });

  test('a revoked account keeps only its principal name', () => {
    const claims = accountClaims({ ...base, status: 'revoked', entitlements: ['urn:x:y'] } as AccountRow, [], settings);
    expect(claims.eduperson_principal_name).toBe('0123456789@utac.example.ac.jp');
    expect(claims.eduperson_affiliation).toBeUndefined();
    expect(claims.eduperson_scoped_affiliation).toBeUndefined();
    expect(claims.eduperson_entitlement).toBeUndefined();
  });

  test('the scope is the realm suffix, else the issuer host', () => {
    expect(eduPersonScope({ realmSuffix: 'utac.example.ac.jp', issuer: 'https://idp.example.ac.jp' })).toBe('utac.example.ac.jp');
    expect(eduPersonScope({ realmSuffix: undefined, issuer: 'https://idp.example.ac.jp/oidc' })).toBe('idp.example.ac.jp');
  });
});

describe('account fields', () => {
  test('readings come in katakana, hiragana or half-width kana and are kept as katakana', () => {
    expect(readProfile({ familyNameKana: 'やまだ', givenNameKana: 'ﾊﾅｺ' })).toEqual({ family_name_kana: 'ヤマダ', given_name_kana: 'ハナコ' });
    expect(readProfile({ familyNameKana: 'ガッコウ　ノ' })).toEqual({ family_name_kana: 'ガッコウ ノ' });
    expect(() => readProfile({ familyNameKana: '山田' })).toThrow(expect.objectContaining({ code: 'invalid_reading' }));
  });

  test('Latin names fold full-width letters and refuse Japanese script; Japanese names refuse control characters', () => {
    expect(readProfile({ familyName: 'ＹＡＭＡＤＡ', givenName: "Zoë O'Neill-Smith" })).toEqual({ family_name: 'YAMADA', given_name: "Zoë O'Neill-Smith" });
    expect(() => readProfile({ familyName: '山田' })).toThrow(expect.objectContaining({ code: 'invalid_name' }));
    expect(() => readProfile({ givenNameJa: '花\u0000子' })).toThrow(expect.objectContaining({ code: 'invalid_name' }));
    expect(() => readProfile({ givenNameJa: '\u202e子花' })).toThrow(expect.objectContaining({ code: 'invalid_name' }));
  });

  test('departments are lower-case codes with levels; empty or null clears a text field', () => {
    expect(readProfile({ department: ' ENG/Mech ' })).toEqual({ department: 'eng/mech' });
    expect(readProfile({ department: '', familyName: null })).toEqual({ department: null, family_name: null });
    for (const bad of ['eng//mech', '/eng', 'eng/', '工学部', 'eng mech', 'a'.repeat(129)]) {
      expect(() => readProfile({ department: bad })).toThrow(expect.objectContaining({ code: 'invalid_department' }));
    }
    expect(normalizeDepartment('ｅｎｇ')).toBe('eng');
    expect(inDepartments('eng_x/a', ['eng'])).toBe(false);
  });

  test('entitlements are absolute URIs, without duplicates, at most 50', () => {
    expect(readProfile({ entitlements: ['urn:mace:dir:entitlement:common-lib-terms', 'https://example.ac.jp/e/1', 'urn:mace:dir:entitlement:common-lib-terms'] })).toEqual({
      entitlements: ['urn:mace:dir:entitlement:common-lib-terms', 'https://example.ac.jp/e/1'],
    });
    expect(readProfile({ entitlements: null })).toEqual({ entitlements: [] });
    expect(() => readProfile({ entitlements: ['library'] })).toThrow(expect.objectContaining({ code: 'invalid_entitlement' }));
    expect(() => readProfile({ entitlements: 'urn:x:y' })).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    expect(() => readProfile({ entitlements: Array.from({ length: 51 }, (_, i) => `urn:x:${i}`) })).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });

  test('types are checked: a flag is a boolean', () => {
    expect(readProfile({ emailVerified: false })).toEqual({ email_verified: false });
    expect(() => readProfile({ emailVerified: 'no' })).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    expect(() => readProfile({ department: 7 })).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });
});
