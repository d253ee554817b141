import { describe, expect, test } from '@jest/globals';
import Keygrip from 'keygrip';
import { CookieSignatures } from '../../src/crypto/cookie-signatures.ts';

describe('cookie signatures', () => {
  const data = 'akamon_session=9f2c1d7e-4b1a-4c55-8a7e-2d0e3c4b5a69';

  test('are Keygrip-compatible both ways, so cookies signed before an upgrade stay valid', () => {
    const keys = ['first key', 'second key'];
    const ours = new CookieSignatures(keys);
    const theirs = new Keygrip(keys);
    expect(ours.sign(data)).toBe(theirs.sign(data));
    expect(ours.index(data, theirs.sign(data))).toBe(0);
    expect(theirs.index(data, ours.sign(data))).toBe(0);
  });

  test('the first key signs; every key verifies and is named by its place (a rotation)', () => {
    const before = new CookieSignatures(['old key']);
    const rotated = new CookieSignatures(['new key', 'old key']);
    expect(rotated.sign(data)).not.toBe(before.sign(data));
    expect(rotated.index(data, before.sign(data))).toBe(1);
    expect(rotated.verify(data, rotated.sign(data))).toBe(true);
  });

  test('refuse another value, a signature of another length, an empty one, one that is no string and one from an unknown key', () => {
    const signatures = new CookieSignatures(['a key']);
    const signature = signatures.sign(data);
    expect(signatures.verify(`${data}x`, signature)).toBe(false);
    expect(signatures.verify(data, signature.slice(1))).toBe(false);
    expect(signatures.verify(data, `${signature}A`)).toBe(false);
    expect(signatures.verify(data, '')).toBe(false);
    expect(signatures.index(data, [signature] as unknown as string)).toBe(-1);
    expect(signatures.index(data, new CookieSignatures(['another key']).sign(data))).toBe(-1);
    expect(() => new CookieSignatures([])).toThrow(/need a key/);
  });
});
