import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';

/**
 * Derives purpose-bound keys from AKAMON_SECRET and encrypts values at rest (AES-256-GCM).
 * Ciphertexts are "v1.<iv>.<tag>.<data>" in base64url so a later format can sit beside this one.
 */
export class SecretBox {
  // A KeyObject, made once: a raw key would be imported again on every call.
  readonly #encryptionKey: KeyObject;
  readonly #secret: string;

  constructor(secret: string) {
    this.#secret = secret;
    this.#encryptionKey = createSecretKey(this.deriveKey('at-rest-encryption'));
  }

  deriveKey(purpose: string, length = 32): Buffer {
    return Buffer.from(hkdfSync('sha256', this.#secret, 'akamon', purpose, length));
  }

  /** A derived key for HMACs (tokens.ts `hmac`), imported once: an HMAC under a raw key imports it again each time (about 8 µs). */
  macKey(purpose: string): KeyObject {
    return createSecretKey(this.deriveKey(purpose));
  }

  encrypt(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#encryptionKey, iv);
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', iv, cipher.getAuthTag(), data].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
  }

  decrypt(ciphertext: string): string {
    const [version, iv, tag, data] = ciphertext.split('.');
    if (version !== 'v1' || !iv || !tag || data === undefined) throw new Error('unrecognised ciphertext format');
    const authTag = Buffer.from(tag, 'base64url');
    // A short tag would make forgery far easier: only the full 16 bytes are accepted.
    if (authTag.length !== 16) throw new Error('invalid authentication tag');
    const decipher = createDecipheriv('aes-256-gcm', this.#encryptionKey, Buffer.from(iv, 'base64url'), { authTagLength: 16 });
    decipher.setAuthTag(authTag);
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
  }
}
