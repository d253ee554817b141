import { ALG, NS } from './constants.ts';
import { xmlCrypto } from './xml-libraries.ts';

export interface XmlSigningKey {
  privatePem: string;
  certificatePem: string;
}

/**
 * Signs the root element of a SAML message or assertion (enveloped signature, exclusive c14n,
 * RSA-SHA256 over SHA-256 digests) and places ds:Signature right after the root's saml:Issuer, where
 * the schema wants it. KeyInfo carries the certificate, so an SP can tell which published key signed.
 *
 * No InclusiveNamespaces prefix list: xml-crypto would write it into the enveloped-signature
 * transform as well, where it has no meaning. The `xs` of `xsi:type="xs:string"` is therefore not in
 * the canonical form; that changes nothing for verification, and SPs read the document itself, where
 * the assertion declares it (as SimpleSAMLphp's assertions do).
 */
export function signRoot(xml: string, key: XmlSigningKey): string {
  const signer = new (xmlCrypto().SignedXml)({
    privateKey: key.privatePem,
    publicCert: key.certificatePem,
    signatureAlgorithm: ALG.rsaSha256,
    canonicalizationAlgorithm: ALG.excC14n,
  });
  signer.addReference({
    xpath: '/*',
    transforms: [ALG.envelopedSignature, ALG.excC14n],
    digestAlgorithm: ALG.sha256,
  });
  signer.computeSignature(xml, {
    prefix: 'ds',
    location: { reference: `/*/*[local-name()='Issuer' and namespace-uri()='${NS.assertion}']`, action: 'after' },
  });
  return signer.getSignedXml();
}
