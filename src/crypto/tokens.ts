import { createHash, createHmac, type KeyObject, randomBytes, randomFillSync, timingSafeEqual } from 'node:crypto';

/** 256 bits from the CSPRNG, base64url: for secrets people never type. */
export function randomToken(prefix = ''): string {
  return prefix + randomBytes(32).toString('base64url');
}

/** Random bytes for per-response nonces, drawn 16 at a time and never reused; refilled from the CSPRNG when spent. */
const noncePool = Buffer.alloc(4096);
let nonceOffset = noncePool.length;

/**
 * 128 bits from the CSPRNG, base64: a nonce for every response (the CSP script nonce). A call into
 * the CSPRNG per response cost about 20 µs, more than the rest of the security headers together.
 */
export function responseNonce(): string {
  if (nonceOffset === noncePool.length) {
    randomFillSync(noncePool);
    nonceOffset = 0;
  }
  nonceOffset += 16;
  return noncePool.toString('base64', nonceOffset - 16, nonceOffset);
}

export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/** HMAC-SHA-256, base64url, under a key made once (SecretBox.macKey). */
export function hmac(key: KeyObject, value: string): string {
  return createHmac('sha256', key).update(value).digest('base64url');
}

/** Constant-time comparison of two strings of possibly different length. */
export function safeEqual(a: string, b: string): boolean {
  const left = createHash('sha256').update(a).digest();
  const right = createHash('sha256').update(b).digest();
  return timingSafeEqual(left, right) && a.length === b.length;
}
