import { describe, expect, test } from '@jest/globals';
import { createSecretKey } from 'node:crypto';
import { SecretBox } from '../../src/crypto/secret-box.ts';
import { hmac, randomToken, safeEqual, sha256 } from '../../src/crypto/tokens.ts';

const SECRET = 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const OTHER = 'other-secret-0123456789-abcdefghijklmnopqrstuvwxy';

/** Flips one base64url character at `index` of a part to a different valid character. */
function flip(part: string, index: number): string {
  const c = part[index];
  return part.slice(0, index) + (c === 'A' ? 'B' : 'A') + part.slice(index + 1);
}

describe('SecretBox', () => {
  const box = new SecretBox(SECRET);

  test('round trip, including empty, Unicode and long texts', () => {
    for (const plaintext of ['hello', '', '共通IDのパスワード 🔑', 'x'.repeat(100_000), '{"kty":"EC","d":"secret"}']) {
      const ciphertext = box.encrypt(plaintext);
      expect(box.decrypt(ciphertext)).toBe(plaintext);
      if (plaintext.length > 4) expect(ciphertext).not.toContain(plaintext);
    }
  });

  test('the format is v1.<iv>.<tag>.<data> in base64url', () => {
    const ciphertext = box.encrypt('abc');
    const parts = ciphertext.split('.');
    expect(parts).toHaveLength(4);
    expect(parts[0]).toBe('v1');
    for (const part of parts.slice(1)) expect(part).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(Buffer.from(parts[1], 'base64url')).toHaveLength(12);
    expect(Buffer.from(parts[2], 'base64url')).toHaveLength(16);
  });

  test('a new box with the same secret decrypts', () => {
    expect(new SecretBox(SECRET).decrypt(box.encrypt('persisted'))).toBe('persisted');
  });

  test('the same plaintext encrypts differently each time', () => {
    const seen = new Set(Array.from({ length: 20 }, () => box.encrypt('same')));
    expect(seen.size).toBe(20);
    const ivs = new Set([...seen].map((c) => c.split('.')[1]));
    expect(ivs.size).toBe(20);
  });

  test('tampering with any part makes decryption throw', () => {
    const ciphertext = box.encrypt('a secret worth protecting');
    const parts = ciphertext.split('.');
    for (const index of [1, 2, 3]) {
      for (const position of [0, parts[index].length >> 1]) {
        const tampered = [...parts];
        tampered[index] = flip(parts[index], position);
        expect(tampered.join('.')).not.toBe(ciphertext);
        expect(() => box.decrypt(tampered.join('.'))).toThrow();
      }
    }
  });

  test('a truncated or malformed ciphertext throws', () => {
    const parts = box.encrypt('x').split('.');
    expect(() => box.decrypt(['v2', ...parts.slice(1)].join('.'))).toThrow(/format/);
    expect(() => box.decrypt(parts.slice(0, 3).join('.'))).toThrow();
    expect(() => box.decrypt([parts[0], parts[1], '', parts[3]].join('.'))).toThrow();
    expect(() => box.decrypt([parts[0], parts[1], parts[2].slice(0, 8), parts[3]].join('.'))).toThrow();
    expect(() => box.decrypt('')).toThrow();
    expect(() => box.decrypt('v1...')).toThrow();
  });

  test('a truncated authentication tag is refused (it would make forgery far easier)', () => {
    const [version, iv, tag, data] = box.encrypt('hello world').split('.');
    for (const bytes of [4, 8, 12, 15]) {
      const short = Buffer.from(tag, 'base64url').subarray(0, bytes).toString('base64url');
      expect(() => box.decrypt([version, iv, short, data].join('.'))).toThrow();
    }
  });

  test('another secret cannot decrypt', () => {
    const ciphertext = box.encrypt('for SECRET only');
    expect(() => new SecretBox(OTHER).decrypt(ciphertext)).toThrow();
  });

  test('deriveKey is stable, differs per purpose and per secret, and honours the length', () => {
    const a = box.deriveKey('csrf');
    expect(a).toHaveLength(32);
    expect(box.deriveKey('csrf').equals(a)).toBe(true);
    expect(new SecretBox(SECRET).deriveKey('csrf').equals(a)).toBe(true);
    expect(box.deriveKey('cookies').equals(a)).toBe(false);
    expect(box.deriveKey('csrf ').equals(a)).toBe(false);
    expect(new SecretBox(OTHER).deriveKey('csrf').equals(a)).toBe(false);
    expect(box.deriveKey('csrf', 64)).toHaveLength(64);
    // The at-rest key is not what other purposes get.
    expect(box.deriveKey('at-rest-encryption').equals(a)).toBe(false);
    // The key is not the secret itself.
    expect(a.equals(Buffer.from(SECRET).subarray(0, 32))).toBe(false);
  });
});

describe('tokens', () => {
  test('safeEqual is true only for identical strings', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('', '')).toBe(true);
    expect(safeEqual('パスワード', 'パスワード')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'ab')).toBe(false);
    expect(safeEqual('ab', 'abc')).toBe(false);
    expect(safeEqual('abc', '')).toBe(false);
    expect(safeEqual('', 'abc')).toBe(false);
    expect(safeEqual('abc', 'ABC')).toBe(false);
    expect(safeEqual('abc\u0000', 'abc')).toBe(false);
    const long = 'x'.repeat(10_000);
    expect(safeEqual(long, long)).toBe(true);
    expect(safeEqual(long, `${long.slice(1)}y`)).toBe(false);
  });

  test('randomToken has 256 bits, the prefix, and does not repeat', () => {
    const token = randomToken('akop_');
    expect(token.startsWith('akop_')).toBe(true);
    expect(Buffer.from(token.slice(5), 'base64url')).toHaveLength(32);
    expect(new Set(Array.from({ length: 50 }, () => randomToken())).size).toBe(50);
  });

  test('sha256 and hmac are deterministic and keyed', () => {
    expect(sha256('abc')).toBe('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
    const k1 = createSecretKey(Buffer.alloc(32, 1));
    const k2 = createSecretKey(Buffer.alloc(32, 2));
    expect(hmac(k1, 'v')).toBe(hmac(k1, 'v'));
    expect(hmac(k1, 'v')).not.toBe(hmac(k2, 'v'));
    expect(hmac(k1, 'v')).not.toBe(hmac(k1, 'w'));
  });
});
