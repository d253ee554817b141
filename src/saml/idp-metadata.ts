import { BINDING, NS } from './constants.ts';

const SHIBMD = 'urn:mace:shibboleth:metadata:1.0';
import { SamlError } from './saml-error.ts';
import { append, certificateBody, declare, newDocument, serialize, setAttributes } from './xml-build.ts';

export interface IdpMetadataInput {
  entityId: string;
  ssoUrl: string;
  sloUrl: string;
  /** PEM certificates: the one signing now first, then the next one and those retiring. */
  certificates: string[];
  nameIdFormats: string[];
  /** The security domain of the scoped attributes (eduPersonPrincipalName, subject-id...): SPs such as Shibboleth accept scoped values only in it. */
  scope: string;
}

/**
 * Akamon's IdP metadata (SAML metadata 2.4.3): a KeyDescriptor per published certificate, so an SP
 * that refreshes it trusts the next key before it signs and the old one until it is gone; single
 * sign-on and logout over HTTP-Redirect and HTTP-POST. Elements follow the schema's order
 * (KeyDescriptor, SingleLogoutService, NameIDFormat, SingleSignOnService).
 */
export function idpMetadata(input: IdpMetadataInput): string {
  if (input.certificates.length === 0) throw new SamlError('unsupported', 'IdP metadata needs at least one signing certificate');
  const { doc, root } = newDocument(NS.metadata, 'md:EntityDescriptor');
  declare(root, 'md', NS.metadata);
  declare(root, 'ds', NS.dsig);
  setAttributes(root, { entityID: input.entityId });
  // Akamon verifies signed AuthnRequests from the SPs registered as signing them; others need not sign.
  const idp = append(root, NS.metadata, 'md:IDPSSODescriptor', { WantAuthnRequestsSigned: 'false', protocolSupportEnumeration: NS.protocol });
  // The Shibboleth metadata extension for scopes, which SAML SPs of academic federations check scoped attributes against.
  append(append(idp, NS.metadata, 'md:Extensions'), SHIBMD, 'shibmd:Scope', { regexp: 'false' }, input.scope);
  for (const pem of input.certificates) {
    const keyInfo = append(append(idp, NS.metadata, 'md:KeyDescriptor', { use: 'signing' }), NS.dsig, 'ds:KeyInfo');
    append(append(keyInfo, NS.dsig, 'ds:X509Data'), NS.dsig, 'ds:X509Certificate', {}, certificateBody(pem));
  }
  for (const binding of [BINDING.redirect, BINDING.post]) append(idp, NS.metadata, 'md:SingleLogoutService', { Binding: binding, Location: input.sloUrl });
  for (const format of input.nameIdFormats) append(idp, NS.metadata, 'md:NameIDFormat', {}, format);
  for (const binding of [BINDING.redirect, BINDING.post]) append(idp, NS.metadata, 'md:SingleSignOnService', { Binding: binding, Location: input.ssoUrl });
  return `<?xml version="1.0" encoding="UTF-8"?>\n${serialize(doc)}`;
}
