import { X509Certificate } from 'node:crypto';
import type { Document, Element } from '@xmldom/xmldom';
import { NS } from './constants.ts';
import { SamlError } from './saml-error.ts';
import { parseXml } from './xml.ts';
import { attribute, booleanAttribute, childElements, elementsNamed, indexAttribute, MAX_ENTITY_ID, requiredAttribute, simpleText } from './xml-read.ts';

// Reading a service provider's SAML metadata (OASIS SAML 2.0 metadata, March 2005) into what its
// registration stores. The operator supplies it (a file or URL); Akamon keeps the result, not the XML.

export interface SpMetadata {
  entityId: string;
  /** Every AssertionConsumerService in document order, whatever its binding (only HTTP-POST is usable: the caller filters). */
  acs: Array<{ binding: string; location: string; index: number; isDefault: boolean }>;
  slo: Array<{ binding: string; location: string; responseLocation: string | null }>;
  /** PEM certificates; a KeyDescriptor without `use` counts for both lists. */
  signingCertificates: string[];
  encryptionCertificates: string[];
  authnRequestsSigned: boolean;
  wantAssertionsSigned: boolean;
  nameIdFormats: string[];
}

/** Metadata of one SP is a few KiB; a federation aggregate (which is not accepted here) is tens of MiB. */
const MAX_METADATA_BYTES = 1024 * 1024;

/**
 * Reads the metadata of one SP: an EntityDescriptor, or an EntitiesDescriptor holding exactly one
 * EntityDescriptor with an SPSSODescriptor. That descriptor must list the SAML 2.0 protocol in its
 * protocolSupportEnumeration (`unsupported` otherwise: a SAML 1.1-only SP, or an IdP's metadata)
 * and name at least one AssertionConsumerService.
 */
export function readSpMetadata(xml: string): SpMetadata {
  const document = parseXml(xml, MAX_METADATA_BYTES);
  const entity = spEntity(document);
  const entityId = requiredAttribute(entity, 'entityID');
  if (entityId.length > MAX_ENTITY_ID) throw new SamlError('malformed', `entityID longer than ${MAX_ENTITY_ID} characters`);
  const sp = childElements(entity, NS.metadata, 'SPSSODescriptor').find((descriptor) => requiredAttribute(descriptor, 'protocolSupportEnumeration').split(/\s+/).includes(NS.protocol));
  if (!sp) throw new SamlError('unsupported', `${entityId} has no SPSSODescriptor for the SAML 2.0 protocol`);

  const acs = childElements(sp, NS.metadata, 'AssertionConsumerService').map((service) => {
    const index = indexAttribute(service, 'index');
    if (index === null) throw new SamlError('malformed', 'an AssertionConsumerService has no index');
    return { binding: requiredAttribute(service, 'Binding'), location: requiredAttribute(service, 'Location'), index, isDefault: booleanAttribute(service, 'isDefault', false) };
  });
  if (acs.length === 0) throw new SamlError('malformed', `${entityId} names no AssertionConsumerService`);
  // An AuthnRequest may name its ACS by index: two with one index would make that ambiguous.
  if (new Set(acs.map((service) => service.index)).size !== acs.length) throw new SamlError('malformed', `${entityId} has two AssertionConsumerServices with one index`);

  const certificates = { signing: new Set<string>(), encryption: new Set<string>() };
  for (const descriptor of childElements(sp, NS.metadata, 'KeyDescriptor')) {
    const use = attribute(descriptor, 'use');
    if (use !== null && use !== 'signing' && use !== 'encryption') throw new SamlError('malformed', `KeyDescriptor use="${use}" is neither signing nor encryption`);
    for (const pem of descriptorCertificates(descriptor)) {
      if (use !== 'encryption') certificates.signing.add(pem);
      if (use !== 'signing') certificates.encryption.add(pem);
    }
  }

  return {
    entityId,
    acs,
    slo: childElements(sp, NS.metadata, 'SingleLogoutService').map((service) => ({
      binding: requiredAttribute(service, 'Binding'),
      location: requiredAttribute(service, 'Location'),
      responseLocation: attribute(service, 'ResponseLocation'),
    })),
    signingCertificates: [...certificates.signing],
    encryptionCertificates: [...certificates.encryption],
    authnRequestsSigned: booleanAttribute(sp, 'AuthnRequestsSigned', false),
    wantAssertionsSigned: booleanAttribute(sp, 'WantAssertionsSigned', false),
    nameIdFormats: childElements(sp, NS.metadata, 'NameIDFormat')
      .map(simpleText)
      .filter((format) => format !== ''),
  };
}

/** The one EntityDescriptor with an SPSSODescriptor: the root, or the only such one inside an EntitiesDescriptor. */
function spEntity(document: Document): Element {
  const root = document.documentElement!;
  if (root.namespaceURI === NS.metadata && root.localName === 'EntityDescriptor') {
    if (childElements(root, NS.metadata, 'SPSSODescriptor').length === 0) throw new SamlError('unsupported', 'the metadata describes no service provider (no SPSSODescriptor)');
    return root;
  }
  if (root.namespaceURI !== NS.metadata || root.localName !== 'EntitiesDescriptor') throw new SamlError('malformed', `SAML metadata is an EntityDescriptor, not a ${root.localName}`);
  const sps = elementsNamed(document, NS.metadata, 'EntityDescriptor').filter((entity) => childElements(entity, NS.metadata, 'SPSSODescriptor').length > 0);
  if (sps.length !== 1) throw new SamlError(sps.length === 0 ? 'unsupported' : 'malformed', `the EntitiesDescriptor holds ${sps.length} service providers: exactly one is registered at a time`);
  return sps[0];
}

/** The X.509 certificates of a KeyDescriptor as PEM; one that does not parse is `malformed` (it would verify nothing). */
function descriptorCertificates(descriptor: Element): string[] {
  return childElements(descriptor, NS.dsig, 'KeyInfo')
    .flatMap((keyInfo) => childElements(keyInfo, NS.dsig, 'X509Data'))
    .flatMap((data) => childElements(data, NS.dsig, 'X509Certificate'))
    .map((element) => {
      const base64 = simpleText(element).replace(/\s+/g, '');
      try {
        if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) throw new Error('not base64');
        return new X509Certificate(Buffer.from(base64, 'base64')).toString();
      } catch {
        throw new SamlError('malformed', 'a KeyDescriptor holds an X509Certificate that is not a certificate');
      }
    });
}
