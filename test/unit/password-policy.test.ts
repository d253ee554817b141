import { describe, expect, test } from '@jest/globals';
import { randomInt } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { checkPassword, countCharacterKinds, exceedsLength, normalizePassword, policyLimits, type PolicyProfile } from '../../src/password/password-policy.ts';
import { blocklistSize, isBlocklisted, stripTrailingDigitsAndSymbols } from '../../src/password/blocklist.ts';
import { generateInitialPassword, INITIAL_PASSWORD_LENGTH, INITIAL_PASSWORD_SYMBOLS } from '../../src/password/initial-password.ts';

const ID = '1234567890';
const uni = (password: string, extra: { commonId?: string; currentPassword?: string } = {}) =>
  checkPassword(password, { profile: 'university', commonId: extra.commonId ?? ID, currentPassword: extra.currentPassword });
const nist = (password: string, extra: { commonId?: string; currentPassword?: string } = {}) =>
  checkPassword(password, { profile: 'nist', commonId: extra.commonId ?? ID, currentPassword: extra.currentPassword });

// A strong password meeting every rule of both profiles (15+ chars, 4 kinds).
const GOOD = 'Vq7#mK2$rTx9&pLw';

describe('normalizePassword / exceedsLength', () => {
  test('normalizes to NFC', () => {
    const nfd = 'Cafe\u0301';
    expect(normalizePassword(nfd)).toBe('Caf\u00e9');
    expect(normalizePassword('Caf\u00e9')).toBe('Caf\u00e9');
  });

  test('counts code points, not UTF-16 units', () => {
    expect(exceedsLength('😀'.repeat(64), 64)).toBe(false);
    expect(exceedsLength('😀'.repeat(65), 64)).toBe(true);
    expect(exceedsLength('a'.repeat(64), 64)).toBe(false);
    expect(exceedsLength('a'.repeat(65), 64)).toBe(true);
  });

  test('counts after NFC: decomposed characters count once', () => {
    expect(exceedsLength('e\u0301'.repeat(64), 64)).toBe(false);
    expect(exceedsLength('e\u0301'.repeat(65), 64)).toBe(true);
  });

  test('huge inputs are too long', () => {
    expect(exceedsLength('a'.repeat(1_000_000), 64)).toBe(true);
  });
});

describe('university profile', () => {
  test('a good password passes and reports the limits', () => {
    const r = uni(GOOD);
    expect(r).toEqual({ ok: true, violations: [], limits: { minLength: 12, maxLength: 64, minKinds: 3 } });
  });

  test('is the profile used when none is given at run time', () => {
    const r = checkPassword('short', { commonId: ID } as unknown as { profile: PolicyProfile; commonId: string });
    expect(r.limits).toEqual(policyLimits('university'));
    expect(r.violations).toContain('too_short');
  });

  test('unknown profiles are rejected', () => {
    expect(() => checkPassword(GOOD, { profile: 'bogus' as PolicyProfile, commonId: ID })).toThrow(RangeError);
  });

  test('length: 12 to 64 code points', () => {
    expect(uni('Vq7#mK2$rTx9').ok).toBe(true); // 12
    expect(uni('Vq7#mK2$rTx').violations).toEqual(['too_short']); // 11
    const max = `Vq7#${'mK2$rTx9&pLw'.repeat(5)}`; // 64
    expect([...max].length).toBe(64);
    expect(uni(max).ok).toBe(true);
    expect(uni(`${max}z`).violations).toEqual(['too_long']);
  });

  test('length counts emoji as one character each', () => {
    // 8 emoji (16 UTF-16 units) + 3 ASCII kinds = 11 code points: too short.
    const short = `A1a${'😀'.repeat(8)}`;
    expect(short.length).toBe(19);
    expect(uni(short).violations).toEqual(['too_short']);
    expect(uni(`A1a${'😀'.repeat(9)}`).ok).toBe(true);
    expect(uni(`A1a${'😀'.repeat(61)}`).ok).toBe(true); // 64
    expect(uni(`A1a${'😀'.repeat(62)}`).violations).toEqual(['too_long']);
  });

  test('length counts after NFC', () => {
    // 11 composed characters written with 22 code points in NFD.
    const nfd = `Ab1e\u0301${'e\u0301'.repeat(7)}`;
    expect([...nfd].length).toBe(19);
    expect(uni(nfd).violations).toEqual(['too_short']);
  });

  test('needs 3 of the 4 kinds', () => {
    expect(uni('vqmkrtxpwzhgnb').violations).toEqual(['too_few_character_kinds']); // lower only
    expect(uni('vqmkrtxpwzhg47').violations).toEqual(['too_few_character_kinds']); // lower + digit
    expect(uni('VQMKRTXPWZ#$%&').violations).toEqual(['too_few_character_kinds']); // upper + symbol
    expect(uni('vqmkrtxpwzhg4#').ok).toBe(true); // lower + digit + symbol
    expect(uni('VQMKRTXPWZhg4k').ok).toBe(true); // upper + lower + digit
    expect(uni('VQMKRTXPWZ48#k').ok).toBe(true); // all four
    expect(countCharacterKinds('Aa1#')).toBe(4);
  });

  test('every printable ASCII symbol except the forbidden ones counts as a kind', () => {
    for (const s of "!#$%&'()*+,-/:;<=>?@[]^_`{|}~") {
      expect(countCharacterKinds(s)).toBe(1);
      expect(uni(`vqmkrtxpwz47${s}`).ok).toBe(true);
    }
  });

  test('non-ASCII letters and digits count as no kind', () => {
    expect(countCharacterKinds('éÉアＡａ１٣')).toBe(0);
    expect(uni('vqmkrtxpwzÉÉÉÉ').violations).toEqual(['too_few_character_kinds']);
    expect(uni('vqmkrtxpwzＡ１ＡＡ').violations).toEqual(['too_few_character_kinds']);
    expect(uni('vqmkrtxpwzAÉ1ア').ok).toBe(true);
  });

  test('forbidden characters: whitespace, ", ., \\, ¥', () => {
    for (const c of [' ', '\u3000', '\u00a0', '\u2028', '"', '.', '\\', '\u00a5']) {
      expect(uni(`Vq7#mK2$rTx9${c}`).violations).toEqual(['forbidden_character']);
      expect(uni(`${c}Vq7#mK2$rTx9`).violations).toEqual(['forbidden_character']);
    }
  });

  test('forbidden characters do not count as the symbol kind', () => {
    expect(uni('vqmkrtxpwz47.').violations).toEqual(['too_few_character_kinds', 'forbidden_character']);
  });

  test('tab, line breaks and the other control characters are named by their own rule, not as whitespace', () => {
    for (const c of ['\t', '\n', '\r', '\u0000', '\u0007', '\u007f', '\u0085', '\u009f']) {
      expect(uni(`Vq7#mK2$rTx9${c}`).violations).toEqual(['control_character']);
    }
    expect(uni('Vq7#mK2$rTx9 \t').violations).toEqual(['forbidden_character', 'control_character']);
  });
});

describe('nist profile', () => {
  test('a good password passes and reports the limits', () => {
    expect(nist(GOOD)).toEqual({ ok: true, violations: [], limits: { minLength: 15, maxLength: 64, minKinds: 0 } });
  });

  test('length: 15 to 64 code points', () => {
    expect(nist('vqmkrtxpwzhgnbf').ok).toBe(true); // 15
    expect(nist('vqmkrtxpwzhgnb').violations).toEqual(['too_short']); // 14
    const max = 'qmkrtxpwzhgnbfjd'.repeat(4); // 64
    expect(nist(max).ok).toBe(true);
    expect(nist(`${max}y`).violations).toEqual(['too_long']);
    expect(nist('😀'.repeat(15)).ok).toBe(true);
    expect(nist('😀'.repeat(14)).violations).toEqual(['too_short']);
  });

  test('control characters are refused here too', () => {
    for (const c of ['\t', '\n', '\u0000', '\u001b', '\u0085']) {
      expect(nist(GOOD + c).violations).toEqual(['control_character']);
    }
  });

  test('no composition rules and no forbidden characters', () => {
    expect(nist('correct zebra kettle mango').ok).toBe(true);
    expect(nist('\u3000"\\.¥ vqmkrtxpwzhgnb').ok).toBe(true);
    expect(nist('すしとラーメンがだいすきです').violations).toEqual(['too_short']);
    expect(nist('すしとラーメンとてんぷらがだいすきです').ok).toBe(true);
  });

  test('Common ID, current password and blocklist rules apply', () => {
    expect(nist('my id is 1234567890').violations).toEqual(['same_as_common_id']);
    expect(nist(GOOD, { currentPassword: GOOD }).violations).toEqual(['same_as_current']);
    expect(nist('Password1234567!').violations).toEqual(['blocklisted']);
    expect(nist('qwertyuiopasdfgh').violations).toEqual(['blocklisted']);
  });
});

describe('Common ID', () => {
  test('equal to the Common ID', () => {
    expect(uni('1234567890Ab', { commonId: '1234567890Ab' }).violations).toEqual(['same_as_common_id']);
  });

  test('containing the Common ID', () => {
    expect(uni('Xy#1234567890').violations).toEqual(['same_as_common_id']);
    expect(uni('1234567890#Xy').violations).toEqual(['same_as_common_id']);
    expect(uni('Xy#123456789#').ok).toBe(true); // only 9 of the 10 digits
  });

  test('is compared case-insensitively', () => {
    expect(uni('Zz#AbCd1234xYz', { commonId: 'abcd1234' }).violations).toEqual(['same_as_common_id']);
    expect(uni('Zz#abcd1234xyz', { commonId: 'ABCD1234' }).violations).toEqual(['same_as_common_id']);
  });

  test('with and without the realm suffix', () => {
    const commonId = '1234567890@utokyo.ac.jp';
    expect(nist('Xy#1234567890$Qw', { commonId }).violations).toEqual(['same_as_common_id']);
    expect(nist('1234567890@UTokyo.ac.jp', { commonId }).violations).toEqual(['same_as_common_id']);
    expect(nist(GOOD, { commonId }).ok).toBe(true);
  });

  test('an empty Common ID is ignored', () => {
    expect(uni(GOOD, { commonId: '' }).ok).toBe(true);
  });
});

describe('current password', () => {
  test('must differ from the current password', () => {
    expect(uni(GOOD, { currentPassword: GOOD }).violations).toEqual(['same_as_current']);
    expect(uni(GOOD, { currentPassword: GOOD.toLowerCase() }).ok).toBe(true); // case-sensitive
    expect(uni(GOOD, { currentPassword: 'Other#Pass9word' }).ok).toBe(true);
  });

  test('NFC and NFD forms of the same password are equal', () => {
    const nfc = 'Caf\u00e9#Gr\u00fcn42xy';
    const nfd = nfc.normalize('NFD');
    expect(nfd).not.toBe(nfc);
    expect(uni(nfc, { currentPassword: nfd }).violations).toEqual(['same_as_current']);
    expect(uni(nfd, { currentPassword: nfc }).violations).toEqual(['same_as_current']);
    expect(nist(`${nfd}zzz`, { currentPassword: `${nfc}zzz` }).violations).toEqual(['same_as_current']);
  });
});

describe('blocklist', () => {
  test('the shipped file is sorted, deduplicated, lower case and small', () => {
    const url = new URL('../../src/password/common-passwords.txt', import.meta.url);
    expect(statSync(url).size).toBeLessThan(200 * 1024);
    const lines = readFileSync(url, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.length).toBeGreaterThanOrEqual(2000);
    expect(new Set(lines).size).toBe(lines.length);
    expect(lines.filter((line, i) => i > 0 && !(lines[i - 1]! < line))).toEqual([]);
    expect(lines.filter((line) => line !== line.toLowerCase() || !/^[\x21-\x7e]+$/.test(line))).toEqual([]);
    expect(blocklistSize()).toBe(lines.length);
  });

  test('contains the expected weak patterns', () => {
    for (const p of [
      'password',
      'qwerty',
      'dragon',
      'sakura',
      'tokyo',
      'todai',
      'utokyo',
      'hongo',
      'komaba',
      'kashiwa',
      'university',
      'welcome',
      'letmein',
      'iloveyou',
      'p@ssw0rd',
      'p@$$w0rd',
      '1qaz2wsx',
      'qwertyuiop',
      'asdfghjkl',
      'tokyo2020',
      '1985sakura',
      'aaaaaaaaaaaa',
      '123456789012',
      'abcdefghijkl',
    ]) {
      expect(isBlocklisted(p)).toBe(true);
    }
  });

  test('case-insensitive', () => {
    expect(isBlocklisted('PASSWORD')).toBe(true);
    expect(isBlocklisted('PaSsWoRd')).toBe(true);
    expect(isBlocklisted('P@ssW0rd')).toBe(true);
    expect(isBlocklisted('SaKuRa')).toBe(true);
  });

  test('trailing digits and symbols are stripped', () => {
    expect(stripTrailingDigitsAndSymbols('password123!')).toBe('password');
    expect(stripTrailingDigitsAndSymbols('pass😀1')).toBe('pass');
    expect(stripTrailingDigitsAndSymbols('1234!')).toBe('');
    for (const p of ['Password123!', 'Password1234', 'P@ssw0rd!!', 'Sakura2024#', 'Todai1877!?', 'Welcome1!', 'Utokyo#2025', 'Iloveyou!!!!', 'Qwerty123456', 'Hongo 2024', 'Komaba\u3000１２３']) {
      expect(isBlocklisted(p)).toBe(true);
    }
  });

  test('leading characters are not stripped, and strong passwords are not hit', () => {
    expect(isBlocklisted('xPassword123!')).toBe(false);
    expect(isBlocklisted(GOOD)).toBe(false);
    expect(isBlocklisted('Vq7#mK2$rTx9&pLw!!1')).toBe(false);
    expect(isBlocklisted('123456!')).toBe(false); // nothing left after stripping, not itself listed
  });

  test('is reported by checkPassword in both profiles', () => {
    expect(uni('Password123!').violations).toEqual(['blocklisted']);
    expect(uni('P@ssw0rd2024').violations).toEqual(['blocklisted']);
    expect(uni('TODAI#2024ab').ok).toBe(true); // not a suffix of digits/symbols only
    expect(nist('Sakura123456789').violations).toEqual(['blocklisted']);
  });

  test('long inputs are handled quickly', () => {
    const start = performance.now();
    expect(isBlocklisted(`${'1'.repeat(200_000)}a`)).toBe(false);
    expect(isBlocklisted(`a${'1'.repeat(200_000)}`)).toBe(false);
    expect(performance.now() - start).toBeLessThan(2000);
  });
});

describe('several violations at once', () => {
  test('all violated rules are reported, in a stable order', () => {
    const r = uni('12345 67890', { currentPassword: '12345 67890', commonId: '1234567890' });
    expect(r.ok).toBe(false);
    expect(r.violations).toEqual(['too_short', 'too_few_character_kinds', 'forbidden_character', 'same_as_current']);

    const r2 = uni('password.1234567890', { currentPassword: 'password.1234567890' });
    expect(r2.violations).toEqual(['too_few_character_kinds', 'forbidden_character', 'same_as_common_id', 'same_as_current', 'blocklisted']);

    const r3 = nist('password', { commonId: 'password', currentPassword: 'password' });
    expect(r3.violations).toEqual(['too_short', 'same_as_common_id', 'same_as_current', 'blocklisted']);
  });

  test('too_long together with other rules', () => {
    const r = uni(`${'a'.repeat(70)} `);
    expect(r.violations).toEqual(['too_long', 'too_few_character_kinds', 'forbidden_character']);
  });
});

describe('initial passwords', () => {
  const profiles: PolicyProfile[] = ['university', 'nist'];
  const allowed = /^[ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789#$%&+\-=?@]+$/;

  test('symbol set', () => {
    expect(INITIAL_PASSWORD_SYMBOLS).toBe('#$%&+-=?@');
  });

  test.each(profiles)('1,000 for %s: all pass the policy with any Common ID, all distinct', (profile) => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const p = generateInitialPassword(profile);
      expect(p).toHaveLength(INITIAL_PASSWORD_LENGTH);
      expect(p).toMatch(allowed);
      expect(p).not.toMatch(/[0O1lI]/);
      // Never a spreadsheet formula in the CSV an import hands out.
      expect(p).not.toMatch(/^[=+\-@]/);
      expect(countCharacterKinds(p)).toBe(4);
      const commonId = String(randomInt(1_000_000_000, 10_000_000_000));
      for (const prof of profiles) {
        const r = checkPassword(p, { profile: prof, commonId });
        expect(r.violations).toEqual([]);
      }
      seen.add(p);
    }
    expect(seen.size).toBe(1000);
  });

  test('honours a given Common ID', () => {
    for (let i = 0; i < 200; i++) {
      const p = generateInitialPassword('university', 'a');
      expect(p).not.toMatch(/a/i);
      expect(checkPassword(p, { profile: 'university', commonId: 'a' }).ok).toBe(true);
    }
  });
});
