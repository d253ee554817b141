import { randomBytes } from 'node:crypto';
import type { Document, Element } from '@xmldom/xmldom';
import { NS, SAML_VERSION } from './constants.ts';
import { SamlError } from './saml-error.ts';
import { xmldom } from './xml-libraries.ts';

/**
 * Building the XML Akamon sends. Every value goes through the DOM (attributes and text nodes), so the
 * serialiser escapes it; nothing is ever concatenated into markup.
 */

/** An xs:ID for a message or assertion: an NCName must not start with a digit, hence the `_`. */
export function newId(): string {
  return `_${randomBytes(20).toString('hex')}`;
}

/**
 * An xs:dateTime in UTC, to the second (`2025-04-01T12:34:56Z`): SAML 2.0 core 1.3.3 asks for UTC
 * without a time zone offset, and whole seconds are what every SP parses.
 */
export function samlInstant(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

export function addSeconds(date: Date, seconds: number): Date {
  return new Date(date.getTime() + seconds * 1000);
}

// Characters XML 1.0 cannot carry, lone surrogates (from a broken UTF-16 string), and the carriage
// return: a parser turns a literal CR into LF (XML 1.0 2.11) and xmldom does not escape it in text,
// so the SP would read another value than the one signed, and the signature would fail.
const NOT_XML_TEXT = /[^\t\n\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

function checked(value: string): string {
  if (NOT_XML_TEXT.test(value)) throw new SamlError('unsupported', 'a value holds a control character or broken Unicode that a SAML message cannot carry');
  return value;
}

/** A new document whose root element is `qualifiedName` in `namespace`. */
export function newDocument(namespace: string, qualifiedName: string): { doc: Document; root: Element } {
  const doc = new (xmldom().DOMImplementation)().createDocument(namespace, qualifiedName, null);
  return { doc, root: doc.documentElement! };
}

/** Declares `xmlns:prefix` on an element, so it appears there when the element is serialised or canonicalised alone. */
export function declare(element: Element, prefix: string, namespace: string): void {
  element.setAttributeNS(NS.xmlns, `xmlns:${prefix}`, namespace);
}

/** Sets the attributes whose value is not undefined or null, in the order given. */
export function setAttributes(element: Element, attributes: Record<string, string | null | undefined>): void {
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) element.setAttribute(name, checked(value));
  }
}

/** Appends a child element, optionally with attributes and text content. */
export function append(parent: Element, namespace: string, qualifiedName: string, attributes: Record<string, string | null | undefined> = {}, text?: string): Element {
  const element = parent.ownerDocument!.createElementNS(namespace, qualifiedName);
  setAttributes(element, attributes);
  if (text !== undefined) element.appendChild(parent.ownerDocument!.createTextNode(checked(text)));
  parent.appendChild(element);
  return element;
}

export function serialize(doc: Document): string {
  return new (xmldom().XMLSerializer)().serializeToString(doc);
}

/** The base64 body of a PEM certificate, as ds:X509Certificate carries it. */
export function certificateBody(pem: string): string {
  const match = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(pem);
  if (!match) throw new SamlError('malformed', 'not a PEM certificate');
  return match[1].replace(/\s+/g, '');
}

export interface SamlNameId {
  value: string;
  format: string;
  nameQualifier?: string;
  spNameQualifier?: string;
}

export interface ProtocolMessageHeader {
  issuer: string;
  destination: string;
  inResponseTo?: string | null;
  now: Date;
}

/**
 * A samlp protocol message (Response, LogoutRequest, LogoutResponse) with its common attributes and
 * its saml:Issuer (core 3.2.1, 3.2.2). Both prefixes are declared on the root.
 */
export function newProtocolMessage(qualifiedName: string, header: ProtocolMessageHeader, extra: Record<string, string> = {}): { doc: Document; root: Element; id: string } {
  const { doc, root } = newDocument(NS.protocol, qualifiedName);
  declare(root, 'samlp', NS.protocol);
  declare(root, 'saml', NS.assertion);
  const id = newId();
  setAttributes(root, { ID: id, Version: SAML_VERSION, IssueInstant: samlInstant(header.now), Destination: header.destination, InResponseTo: header.inResponseTo, ...extra });
  append(root, NS.assertion, 'saml:Issuer', {}, header.issuer);
  return { doc, root, id };
}

/** samlp:Status with a top-level code, an optional second-level code and an optional message. */
export function appendStatus(parent: Element, status: { top: string; second?: string; message?: string }): void {
  const element = append(parent, NS.protocol, 'samlp:Status');
  const code = append(element, NS.protocol, 'samlp:StatusCode', { Value: status.top });
  if (status.second) append(code, NS.protocol, 'samlp:StatusCode', { Value: status.second });
  if (status.message) append(element, NS.protocol, 'samlp:StatusMessage', {}, status.message);
}

export function appendNameId(parent: Element, nameId: SamlNameId): void {
  append(parent, NS.assertion, 'saml:NameID', { Format: nameId.format, NameQualifier: nameId.nameQualifier, SPNameQualifier: nameId.spNameQualifier }, nameId.value);
}
