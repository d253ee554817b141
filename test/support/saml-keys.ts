// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect polyfill.
import 'reflect-metadata';
import { KeyObject, webcrypto } from 'node:crypto';
import { X509CertificateGenerator } from '@peculiar/x509';

export interface TestKeyPair {
  privatePem: string;
  certificatePem: string;
}

const ALGORITHMS = {
  rsa: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) },
  ec: { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' },
};

/** A fresh key and self-signed certificate, as an SP (or an attacker) would make for SAML: nothing hard-coded in the tests. */
export async function testKeyPair(kind: 'rsa' | 'ec', commonName = 'sp.example.ac.jp'): Promise<TestKeyPair> {
  const algorithm = ALGORITHMS[kind];
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const notBefore = new Date();
  const certificate = await X509CertificateGenerator.createSelfSigned(
    { serialNumber: '01', name: `CN=${commonName}`, notBefore, notAfter: new Date(notBefore.getTime() + 365 * 86_400_000), signingAlgorithm: algorithm, keys },
    webcrypto as unknown as Parameters<typeof X509CertificateGenerator.createSelfSigned>[1],
  );
  return { privatePem: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString(), certificatePem: certificate.toString('pem') };
}
