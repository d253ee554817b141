import type { Document, Element } from '@xmldom/xmldom';
import { NAMEID_FORMAT, NS, SAML_VERSION } from './constants.ts';
import { SamlError } from './saml-error.ts';

// Readers over a DOM that parseXml accepted, shared by the message and metadata modules. Each
// refuses a value it cannot read with a SamlError, so no reader guesses.

/** The root element, refused unless it is `localName` in `namespace`. */
export function rootElement(document: Document, namespace: string, localName: string): Element {
  const root = document.documentElement;
  if (!root || root.namespaceURI !== namespace || root.localName !== localName) {
    throw new SamlError('malformed', `expected a ${localName} in ${namespace}, got ${root ? `${root.localName} in ${root.namespaceURI ?? 'no namespace'}` : 'nothing'}`);
  }
  return root;
}

/** The child elements of `parent` named `localName` in `namespace`, in document order. */
export function childElements(parent: Element, namespace: string, localName: string): Element[] {
  return Array.from(parent.childNodes).filter(
    (node): node is Element => node.nodeType === node.ELEMENT_NODE && (node as Element).namespaceURI === namespace && (node as Element).localName === localName,
  );
}

/** The one child element `localName`, null when there is none; two are `malformed` (which one would count?). */
export function optionalChild(parent: Element, namespace: string, localName: string): Element | null {
  const children = childElements(parent, namespace, localName);
  if (children.length > 1) throw new SamlError('malformed', `${parent.localName} has ${children.length} ${localName} elements`);
  return children[0] ?? null;
}

export function requiredChild(parent: Element, namespace: string, localName: string): Element {
  const child = optionalChild(parent, namespace, localName);
  if (!child) throw new SamlError('malformed', `${parent.localName} has no ${localName}`);
  return child;
}

/** Elements `localName` in `namespace` anywhere in the document (the signature-wrapping checks count them). */
export function elementsNamed(document: Document, namespace: string, localName: string): Element[] {
  return Array.from(document.getElementsByTagNameNS(namespace, localName));
}

/**
 * The text of a simple-content element (Issuer, NameID, SessionIndex, AuthnContextClassRef...):
 * every text and CDATA node concatenated, comments skipped, surrounding whitespace trimmed.
 * Concatenating, not taking the first text node, is what keeps `<NameID>admin@a.example<!---->.evil.example</NameID>`
 * from reading as `admin@a.example`: the value read is exactly the one a signature covers
 * (canonicalisation drops comments and joins the text), so a comment can neither shorten it nor
 * turn a legitimate pretty-printed value away. A child element has no place in such a value and is `malformed`.
 */
export function simpleText(element: Element): string {
  let text = '';
  for (const node of Array.from(element.childNodes)) {
    if (node.nodeType === node.TEXT_NODE || node.nodeType === node.CDATA_SECTION_NODE) text += node.nodeValue ?? '';
    else if (node.nodeType !== node.COMMENT_NODE) throw new SamlError('malformed', `${element.localName} must hold text only`);
  }
  return text.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
}

/** An attribute's value, null when absent. */
export function attribute(element: Element, name: string): string | null {
  return element.hasAttribute(name) ? element.getAttribute(name) : null;
}

export function requiredAttribute(element: Element, name: string): string {
  const value = attribute(element, name);
  if (value === null || value === '') throw new SamlError('malformed', `${element.localName} has no ${name}`);
  return value;
}

/** An xs:boolean attribute (`true`, `false`, `1`, `0`), `fallback` when absent. */
export function booleanAttribute(element: Element, name: string, fallback: boolean): boolean {
  const value = attribute(element, name)?.trim();
  if (value === undefined) return fallback;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new SamlError('malformed', `${element.localName} ${name}="${value}" is not a boolean`);
}

/** An xs:unsignedShort attribute (ACS indexes), null when absent. */
export function indexAttribute(element: Element, name: string): number | null {
  const value = attribute(element, name);
  if (value === null) return null;
  if (!/^\d{1,5}$/.test(value.trim()) || Number(value) > 65535) throw new SamlError('malformed', `${element.localName} ${name}="${value}" is not an index`);
  return Number(value);
}

/**
 * An xs:dateTime in UTC (SAML core 1.3.3: "MUST be expressed in UTC form"): `Z`, `+00:00` or no
 * zone; fractions beyond milliseconds are dropped.
 */
export function utcDateTime(element: Element, name: string, value: string): Date {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:Z|[+-]00:00)?$/.exec(value);
  if (match) {
    const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number);
    const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second, Number((match[7] ?? '0').padEnd(3, '0').slice(0, 3))));
    // Date.UTC rolls 2025-02-30 over to March: a value that does not come back unchanged is not a date.
    if (date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day && hour < 24 && minute < 60 && second < 60) return date;
  }
  throw new SamlError('malformed', `${element.localName} ${name}="${value}" is not a UTC date and time`);
}

/** xs:ID is an NCName; message IDs also key replay caches, so they are bounded. */
export function isXmlId(value: string): boolean {
  return value.length <= 256 && /^[\p{L}_][\p{L}\p{N}\p{M}._\u00B7-]*$/u.test(value);
}

/** What every SAML protocol message carries (core 3.2.1 RequestAbstractType, 3.2.2 StatusResponseType). */
export interface MessageHeader {
  id: string;
  issuer: string;
  issueInstant: Date;
  destination: string | null;
}

/** entityIDs are at most 1024 characters (metadata 2.3.2). */
export const MAX_ENTITY_ID = 1024;

/**
 * The root of a protocol message that must be `localName`, and its header. Version 2.0, an xs:ID
 * and an IssueInstant are required by core, an Issuer by every profile Akamon implements (4.1.4.1,
 * 4.4.4.1). A second `localName` or any Assertion in the document is refused before any signature
 * check: neither has a place in a request or logout message, and both are how signature-wrapping
 * attacks hide the element a careless reader would pick.
 */
export function readProtocolMessage(document: Document, localName: string): { root: Element; header: MessageHeader } {
  const root = rootElement(document, NS.protocol, localName);
  if (elementsNamed(document, NS.protocol, localName).length !== 1) throw new SamlError('malformed', `the document holds more than one ${localName}`);
  if (elementsNamed(document, NS.assertion, 'Assertion').length > 0) throw new SamlError('malformed', `a ${localName} cannot hold an Assertion`);
  const version = requiredAttribute(root, 'Version');
  // Core 3.2.2.1: an unsupported version is answered with VersionMismatch, not treated as a bad message.
  if (version !== SAML_VERSION) throw new SamlError('unsupported', `${localName} of SAML version ${version}: only ${SAML_VERSION} is supported`);
  const id = requiredAttribute(root, 'ID');
  if (!isXmlId(id)) throw new SamlError('malformed', `${localName} ID is not an XML ID`);
  const header = {
    id,
    issuer: readIssuer(root),
    issueInstant: utcDateTime(root, 'IssueInstant', requiredAttribute(root, 'IssueInstant')),
    destination: attribute(root, 'Destination'),
  };
  return { root, header };
}

function readIssuer(root: Element): string {
  const issuer = requiredChild(root, NS.assertion, 'Issuer');
  const format = attribute(issuer, 'Format');
  // An SP names itself by entityID only (profiles 4.1.4.1, 4.4.4.1).
  if (format !== null && format !== NAMEID_FORMAT.entity) throw new SamlError('malformed', `Issuer of Format ${format}: an entity is expected`);
  const value = simpleText(issuer);
  if (value === '' || value.length > MAX_ENTITY_ID) throw new SamlError('malformed', 'Issuer is empty or longer than 1024 characters');
  return value;
}
