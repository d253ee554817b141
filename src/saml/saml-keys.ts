import { certificateFor, privateKeyPem, type SamlSigningKey } from './certificate.ts';
import type { XmlSigningKey } from './sign.ts';

/**
 * The keys SAML signs with: Akamon's RS256 signing keys, which rotate with the OIDC keys. The first
 * one signs; the IdP metadata publishes all of them, so SPs learn the next key before it signs.
 */
export class SamlKeys {
  #keys: SamlSigningKey[] = [];
  readonly #issuer: string;
  /** The signing key in the forms XML signing takes, made once per key rather than per answer. */
  #signing: Promise<XmlSigningKey> | undefined;

  constructor(issuer: string) {
    this.#issuer = issuer;
  }

  /** Takes the RS256 keys the provider was (re)built with, the signing one first. */
  update(keys: SamlSigningKey[]): void {
    if (keys[0]?.kid !== this.#keys[0]?.kid) this.#signing = undefined;
    this.#keys = keys;
  }

  signing(): Promise<XmlSigningKey> {
    const key = this.#keys[0];
    if (!key) return Promise.reject(new Error('no RS256 signing key is loaded'));
    if (!this.#signing) {
      const made = certificateFor(key, this.#issuer).then((certificatePem) => ({ privatePem: privateKeyPem(key.privateJwk), certificatePem }));
      // A failure is not kept: the next answer tries again.
      made.catch(() => {
        if (this.#signing === made) this.#signing = undefined;
      });
      this.#signing = made;
    }
    return this.#signing;
  }

  certificates(): Promise<string[]> {
    return Promise.all(this.#keys.map((key) => certificateFor(key, this.#issuer)));
  }
}
