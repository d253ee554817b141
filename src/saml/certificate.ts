import { createHash, createPrivateKey, createPublicKey, type JsonWebKey, webcrypto } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import type { JWK } from 'jose';
import { lazyModule } from '../shared/lazy-module.ts';
import { SamlError } from './saml-error.ts';

/** Loaded on the first certificate (or by the warm-up), not at start. */
const x509 = lazyModule((require) => {
  // The library resolves its algorithm providers through tsyringe, which needs the Reflect metadata
  // API: it must be loaded before the library is.
  require('reflect-metadata');
  return require('@peculiar/x509') as typeof X509;
});

export interface SamlSigningKey {
  kid: string;
  privateJwk: JWK;
  publicJwk: JWK;
  createdAt: Date;
}

/** How long the self-signed certificate claims to be valid: SAML trusts the key, not the dates. */
const VALIDITY_YEARS = 20;

const RSA_PKCS1_SHA256 = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };

const memo = new Map<string, Promise<string>>();

/** The PEM (PKCS#8) of one of Akamon's RS256 signing keys, for xml-crypto and redirect signatures. */
export function privateKeyPem(privateJwk: JWK): string {
  return createPrivateKey({ key: privateJwk as JsonWebKey, format: 'jwk' })
    .export({ type: 'pkcs8', format: 'pem' })
    .toString();
}

/**
 * The self-signed X.509 certificate SAML metadata and signatures carry for one of Akamon's RS256
 * signing keys (SAML names keys by certificate, where OIDC names them by JWK).
 *
 * Every node must publish the same certificate for a key without storing it, so nothing in it is
 * random or taken from the clock: the serial number is derived from the kid, the validity runs from
 * the key's creation (whole seconds: X.509 times have no fractions) for 20 years, the subject and
 * issuer are CN=<issuer host>, the one extension (the subject key identifier: without any, the
 * library writes an empty extension list, which RFC 5280 does not allow) is a hash of the public
 * key, and the RSA PKCS#1 v1.5 signature is deterministic. Memoised per kid and issuer.
 */
export function certificateFor(key: SamlSigningKey, issuer: string): Promise<string> {
  const memoKey = `${key.kid} ${issuer}`;
  let pending = memo.get(memoKey);
  if (!pending) {
    pending = makeCertificate(key, issuer);
    memo.set(memoKey, pending);
    // A failure must not stay cached: the next call tries again.
    pending.catch(() => memo.delete(memoKey));
  }
  return pending;
}

async function makeCertificate(key: SamlSigningKey, issuer: string): Promise<string> {
  if (key.privateJwk.kty !== 'RSA' || key.publicJwk.kty !== 'RSA') throw new SamlError('unsupported', `signing key ${key.kid} is not an RSA key: SAML signs with the RS256 keys`);
  const privateKey = createPrivateKey({ key: key.privateJwk as JsonWebKey, format: 'jwk' });
  const publicKey = createPublicKey({ key: key.publicJwk as JsonWebKey, format: 'jwk' });
  if (!createPublicKey(privateKey).equals(publicKey)) throw new SamlError('unsupported', `the public and private JWKs of signing key ${key.kid} do not match`);

  // A positive 16-byte serial (RFC 5280 allows up to 20) whose first byte is neither 0 nor >= 0x80,
  // so its DER encoding needs no sign padding and is the same length for every kid.
  const serial = createHash('sha256').update(key.kid).digest().subarray(0, 16);
  serial[0] = (serial[0] & 0x7f) | 0x40;
  const notBefore = new Date(Math.floor(key.createdAt.getTime() / 1000) * 1000);
  const notAfter = new Date(notBefore);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + VALIDITY_YEARS);

  const keys = {
    privateKey: privateKey.toCryptoKey(RSA_PKCS1_SHA256, false, ['sign']),
    publicKey: publicKey.toCryptoKey(RSA_PKCS1_SHA256, true, ['verify']),
  };
  const { SubjectKeyIdentifierExtension, X509CertificateGenerator } = x509();
  // Node's webcrypto, typed as the provider the library's declarations name.
  const provider = webcrypto as unknown as Parameters<typeof X509CertificateGenerator.createSelfSigned>[1];
  const certificate = await X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial.toString('hex'),
      name: [{ CN: [new URL(issuer).host] }],
      notBefore,
      notAfter,
      signingAlgorithm: RSA_PKCS1_SHA256,
      keys,
      extensions: [await SubjectKeyIdentifierExtension.create(keys.publicKey, false, provider)],
    },
    provider,
  );
  return certificate.toString('pem');
}
