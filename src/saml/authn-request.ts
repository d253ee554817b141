import type { Document, Element } from '@xmldom/xmldom';
import { NS } from './constants.ts';
import { SamlError } from './saml-error.ts';
import { parseXml } from './xml.ts';
import { attribute, booleanAttribute, childElements, indexAttribute, optionalChild, readProtocolMessage, simpleText } from './xml-read.ts';

export type AuthnComparison = 'exact' | 'minimum' | 'maximum' | 'better';

export interface AuthnRequest {
  id: string;
  issuer: string;
  issueInstant: Date;
  destination: string | null;
  acsUrl: string | null;
  acsIndex: number | null;
  protocolBinding: string | null;
  forceAuthn: boolean;
  isPassive: boolean;
  nameIdFormat: string | null;
  requestedAuthnContext: { comparison: AuthnComparison; classRefs: string[] } | null;
  document: Document;
}

const COMPARISONS: readonly string[] = ['exact', 'minimum', 'maximum', 'better'] satisfies AuthnComparison[];

/**
 * Reads an AuthnRequest (SAML core 3.4.1) from its XML: the root must be samlp:AuthnRequest, with
 * the header every protocol message needs (readProtocolMessage, which also refuses the shapes of
 * signature wrapping). The signature is checked separately (verifyRedirectSignature or
 * verifyEmbeddedSignature) against the registration of the issuer this reading names.
 */
export function readAuthnRequest(xml: string): AuthnRequest {
  const document = parseXml(xml);
  const { root, header } = readProtocolMessage(document, 'AuthnRequest');

  const acsUrl = attribute(root, 'AssertionConsumerServiceURL');
  const acsIndex = indexAttribute(root, 'AssertionConsumerServiceIndex');
  const protocolBinding = attribute(root, 'ProtocolBinding');
  // Core 3.4.1 makes the index exclusive of the URL and the binding. An index with a URL names two
  // places to send the response to, and is refused; an index with a binding names one (the index's)
  // and is let through, as the binding adds nothing.
  if (acsIndex !== null && acsUrl !== null) throw new SamlError('malformed', 'the AuthnRequest names both an AssertionConsumerServiceIndex and an AssertionConsumerServiceURL');

  const policy = optionalChild(root, NS.protocol, 'NameIDPolicy');
  return {
    ...header,
    acsUrl,
    acsIndex,
    protocolBinding,
    forceAuthn: booleanAttribute(root, 'ForceAuthn', false),
    isPassive: booleanAttribute(root, 'IsPassive', false),
    nameIdFormat: policy ? attribute(policy, 'Format') : null,
    requestedAuthnContext: readRequestedAuthnContext(root),
    document,
  };
}

function readRequestedAuthnContext(root: Element): AuthnRequest['requestedAuthnContext'] {
  const context = optionalChild(root, NS.protocol, 'RequestedAuthnContext');
  if (!context) return null;
  const comparison = attribute(context, 'Comparison') ?? 'exact';
  if (!COMPARISONS.includes(comparison)) throw new SamlError('malformed', `RequestedAuthnContext Comparison="${comparison}" is not exact, minimum, maximum or better`);
  if (childElements(context, NS.assertion, 'AuthnContextDeclRef').length > 0) throw new SamlError('unsupported', 'RequestedAuthnContext by AuthnContextDeclRef: only class references are supported');
  const classRefs = childElements(context, NS.assertion, 'AuthnContextClassRef').map(simpleText);
  if (classRefs.length === 0 || classRefs.includes('')) throw new SamlError('malformed', 'RequestedAuthnContext names no authentication context class');
  return { comparison: comparison as AuthnComparison, classRefs };
}
