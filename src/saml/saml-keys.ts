import { certificateFor, privateKeyPem, type SamlSigningKey } from './certificate.ts';
import type { XmlSigningKey } from './sign.ts';

/**
 * The keys SAML signs with: Akamon's RS256 signing keys, which rotate with the OIDC keys. The first
 * one signs; the IdP metadata publishes all of them, so SPs learn the next key before it signs.
 */
export class SamlKeys {
  #keys: SamlSigningKey[] = [];
  readonly #issuer: string;

  constructor(issuer: string) {
    this.#issuer = issuer;
  }

  /** Takes the RS256 keys the provider was (re)built with, the signing one first. */
  update(keys: SamlSigningKey[]): void {
    this.#keys = keys;
  }

  async signing(): Promise<XmlSigningKey> {
    const key = this.#keys[0];
    if (!key) throw new Error('no RS256 signing key is loaded');
    return { privatePem: privateKeyPem(key.privateJwk), certificatePem: await certificateFor(key, this.#issuer) };
  }

  certificates(): Promise<string[]> {
    return Promise.all(this.#keys.map((key) => certificateFor(key, this.#issuer)));
  }
}
