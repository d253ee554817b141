import type { Document } from '@xmldom/xmldom';
import { NS } from './constants.ts';
import { SamlError } from './saml-error.ts';
import { parseXml } from './xml.ts';
import { attribute, childElements, optionalChild, readProtocolMessage, requiredAttribute, requiredChild, simpleText, utcDateTime } from './xml-read.ts';

// Reading the Single Logout messages an SP sends (SAML core 3.7, profiles 4.4). Building Akamon's
// own logout messages is src/saml/logout-build.ts. Signatures are checked separately, as for AuthnRequests.

/**
 * The most SessionIndexes a LogoutRequest may carry: an SP names the sessions of the assertions it
 * holds for the person (profiles 4.4.4.1), a handful; more is refused before any is looked up.
 */
export const MAX_SESSION_INDEXES = 16;

export interface LogoutRequest {
  id: string;
  issuer: string;
  issueInstant: Date;
  destination: string | null;
  /** When the SP says the request expires (core 3.7.1), null when it does not. */
  notOnOrAfter: Date | null;
  nameId: { value: string; format: string | null; spNameQualifier?: string };
  sessionIndexes: string[];
  document: Document;
}

export interface LogoutResponse {
  id: string;
  issuer: string;
  inResponseTo: string | null;
  /** The top-level StatusCode value (core 3.2.2.2), e.g. `...:status:Success`. */
  statusCode: string;
  document: Document;
}

/**
 * Reads a LogoutRequest: the protocol message header (readProtocolMessage) and a plain NameID. An
 * EncryptedID or BaseID is `unsupported`: Akamon issues neither.
 */
export function readLogoutRequest(xml: string): LogoutRequest {
  const document = parseXml(xml);
  const { root, header } = readProtocolMessage(document, 'LogoutRequest');
  if (optionalChild(root, NS.assertion, 'EncryptedID') || optionalChild(root, NS.assertion, 'BaseID')) {
    throw new SamlError('unsupported', 'LogoutRequest by EncryptedID or BaseID: Akamon issues plain NameIDs');
  }
  const nameIdElement = requiredChild(root, NS.assertion, 'NameID');
  const value = simpleText(nameIdElement);
  if (value === '') throw new SamlError('malformed', 'LogoutRequest has an empty NameID');
  const spNameQualifier = attribute(nameIdElement, 'SPNameQualifier');
  const notOnOrAfter = attribute(root, 'NotOnOrAfter');
  const sessionIndexes = childElements(root, NS.protocol, 'SessionIndex');
  if (sessionIndexes.length > MAX_SESSION_INDEXES) throw new SamlError('too_large', `LogoutRequest with more than ${MAX_SESSION_INDEXES} SessionIndexes`);
  return {
    ...header,
    notOnOrAfter: notOnOrAfter === null ? null : utcDateTime(root, 'NotOnOrAfter', notOnOrAfter),
    nameId: { value, format: attribute(nameIdElement, 'Format'), ...(spNameQualifier === null ? {} : { spNameQualifier }) },
    sessionIndexes: sessionIndexes.map((element) => {
      const index = simpleText(element);
      if (index === '') throw new SamlError('malformed', 'LogoutRequest has an empty SessionIndex');
      return index;
    }),
    document,
  };
}

/** Reads a LogoutResponse: the protocol message header (readProtocolMessage) and a Status with a StatusCode. */
export function readLogoutResponse(xml: string): LogoutResponse {
  const document = parseXml(xml);
  const { root, header } = readProtocolMessage(document, 'LogoutResponse');
  const statusCode = requiredChild(requiredChild(root, NS.protocol, 'Status'), NS.protocol, 'StatusCode');
  return { id: header.id, issuer: header.issuer, inResponseTo: attribute(root, 'InResponseTo'), statusCode: requiredAttribute(statusCode, 'Value'), document };
}
