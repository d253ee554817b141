import type { Document, Element } from '@xmldom/xmldom';
import { NS } from './constants.ts';
import { SamlError } from './saml-error.ts';
import { parseXml } from './xml.ts';
import { attribute, booleanAttribute, childElements, elementsNamed, indexAttribute, optionalChild, readProtocolMessage, simpleText } from './xml-read.ts';

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
  /** The principal the assertion must be about (core 3.4.1 Subject), null when the request names none. */
  subject: RequestedSubject | null;
  document: Document;
}

/** A Subject's NameID as the request gives it (core 2.2.2); an attribute left out is null. */
export interface RequestedNameId {
  value: string;
  format: string | null;
  nameQualifier: string | null;
  spNameQualifier: string | null;
  spProvidedId: string | null;
}

/** A Subject names its principal by a NameID, or by an identifier Akamon cannot read (it publishes no encryption key). */
export type RequestedSubject = { nameId: RequestedNameId } | { unreadable: 'EncryptedID' | 'BaseID' };

/** No NameID Akamon gives is longer: core 8.3.7 and 8.3.8 bound persistent and transient ones, an address has at most 254 characters. */
const MAX_NAME_ID = 256;

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
    subject: readSubject(document, root),
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

/**
 * The request's Subject: one identifier and nothing else. The Web Browser SSO profile (4.1.4.1)
 * forbids SubjectConfirmation in it, and a Subject anywhere but on the request itself (hidden in
 * Extensions) is refused like the wrapping shapes readProtocolMessage refuses.
 */
function readSubject(document: Document, root: Element): RequestedSubject | null {
  const subject = optionalChild(root, NS.assertion, 'Subject');
  if (elementsNamed(document, NS.assertion, 'Subject').length !== (subject ? 1 : 0)) throw new SamlError('malformed', 'a Subject elsewhere than in the AuthnRequest itself');
  if (!subject) return null;
  if (childElements(subject, NS.assertion, 'SubjectConfirmation').length > 0) throw new SamlError('malformed', 'the Subject of an AuthnRequest cannot hold a SubjectConfirmation');
  const children = Array.from(subject.childNodes).filter((node): node is Element => node.nodeType === node.ELEMENT_NODE);
  const identifier = children.length === 1 && children[0].namespaceURI === NS.assertion ? children[0] : undefined;
  if (!identifier || !['NameID', 'EncryptedID', 'BaseID'].includes(identifier.localName ?? '')) throw new SamlError('malformed', 'the Subject must hold exactly one NameID, EncryptedID or BaseID');
  if (identifier.localName !== 'NameID') return { unreadable: identifier.localName as 'EncryptedID' | 'BaseID' };
  const value = simpleText(identifier);
  if (value === '' || value.length > MAX_NAME_ID) throw new SamlError('malformed', `the Subject's NameID is empty or longer than ${MAX_NAME_ID} characters`);
  return {
    nameId: {
      value,
      format: attribute(identifier, 'Format'),
      nameQualifier: attribute(identifier, 'NameQualifier'),
      spNameQualifier: attribute(identifier, 'SPNameQualifier'),
      spProvidedId: attribute(identifier, 'SPProvidedID'),
    },
  };
}
