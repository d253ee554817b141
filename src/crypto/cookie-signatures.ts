import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';

/**
 * The signatures of signed cookies (the `.sig` cookie beside each), for Koa's and the provider's
 * cookies alike. The format is Keygrip's (HMAC-SHA1, base64url without padding), so cookies signed
 * before stay valid; the first key signs and every key verifies (a rotation keeps older keys a
 * while). What differs is the cost of a check: Keygrip compares through a double HMAC under a
 * fresh random key (three HMACs per key and cookie read, and a Keygrip made per request); two
 * digests of one length compare in constant time as they are.
 */
export class CookieSignatures {
  readonly #keys: KeyObject[];

  constructor(keys: string[]) {
    if (keys.length === 0) throw new Error('cookie signatures need a key');
    this.#keys = keys.map((key) => createSecretKey(Buffer.from(key, 'utf8')));
  }

  sign(data: string): string {
    return digest(this.#keys[0]!, data);
  }

  verify(data: string, signature: string): boolean {
    return this.index(data, signature) > -1;
  }

  /** The index of the key that made `signature`, or -1. */
  index(data: string, signature: string): number {
    // Only a string is a signature (the cookies package passes the .sig cookie's text).
    if (typeof signature !== 'string') return -1;
    const given = Buffer.from(signature);
    for (const [i, key] of this.#keys.entries()) {
      const expected = Buffer.from(digest(key, data));
      if (expected.length === given.length && timingSafeEqual(expected, given)) return i;
    }
    return -1;
  }
}

const digest = (key: KeyObject, data: string) => createHmac('sha1', key).update(data).digest('base64url');
