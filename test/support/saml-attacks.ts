import { sign } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { DOMParser, type Element, XMLSerializer } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { en } from '../../src/i18n/en.ts';
import { ja } from '../../src/i18n/ja.ts';
import type { RunningAkamon } from './akamon.ts';
import type { Browser, Page } from './browser.ts';
import { postedTo } from './saml-sp.ts';

// What an attacker (or a careful SP) does to SAML messages on their way to Akamon, made here with
// xml-crypto and node:crypto directly so that each test chooses exactly what is signed, how, and
// with which key: nothing of Akamon's own signing code is used to make the messages it must refuse.

export const XMLDSIG = {
  rsaSha1: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
  rsaSha256: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
  excC14n: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  enveloped: 'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
} as const;

const PROTOCOL_NS = 'urn:oasis:names:tc:SAML:2.0:protocol';
const ASSERTION_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
const DSIG_NS = 'http://www.w3.org/2000/09/xmldsig#';

/**
 * Signs `xml` as an SP does for the HTTP-POST binding (enveloped, exclusive c14n, SHA-256 digest,
 * ds:Signature right after the root's Issuer), with choices an attacker makes: the element the
 * reference points to (`reference`, an XPath; the root by default) and the certificate put in
 * KeyInfo (none by default).
 */
export function signXml(xml: string, key: { privatePem: string }, options: { reference?: string; keyInfoCertificate?: string } = {}): string {
  const signer = new SignedXml({
    privateKey: key.privatePem,
    publicCert: options.keyInfoCertificate,
    signatureAlgorithm: XMLDSIG.rsaSha256,
    canonicalizationAlgorithm: XMLDSIG.excC14n,
  });
  signer.addReference({ xpath: options.reference ?? '/*', transforms: [XMLDSIG.enveloped, XMLDSIG.excC14n], digestAlgorithm: XMLDSIG.sha256 });
  signer.computeSignature(xml, { prefix: 'ds', location: { reference: `/*/*[local-name()='Issuer' and namespace-uri()='${ASSERTION_NS}']`, action: 'after' } });
  return signer.getSignedXml();
}

/** Edits a message's DOM (xmldom, as Akamon reads it) and serialises it again. */
export function editXml(xml: string, edit: (root: Element) => void): string {
  const document = new DOMParser().parseFromString(xml, 'application/xml');
  edit(document.documentElement!);
  return new XMLSerializer().serializeToString(document);
}

export const child = (parent: Element, namespace: string, localName: string): Element =>
  Array.from(parent.childNodes).find((n): n is Element => n.nodeType === n.ELEMENT_NODE && (n as Element).namespaceURI === namespace && (n as Element).localName === localName)!;

export const signatureOf = (root: Element) => child(root, DSIG_NS, 'Signature');
export const issuerOf = (root: Element) => child(root, ASSERTION_NS, 'Issuer');

/** A samlp:Extensions element (where an attacker hides things: any content is allowed there), appended to the root. */
export function appendExtensions(root: Element, content: string): Element {
  const fragment = new DOMParser().parseFromString(`<samlp:Extensions xmlns:samlp="${PROTOCOL_NS}">${content}</samlp:Extensions>`, 'application/xml').documentElement!;
  const extensions = root.ownerDocument!.importNode(fragment, true) as Element;
  root.appendChild(extensions);
  return extensions;
}

/**
 * Signature wrapping as published (XSW, Somorovsky et al. 2012): the attacker's message `evilXml`
 * becomes the root and carries the genuine signature of `signedXml` right after its Issuer; the
 * signed original, its signature taken out so that its digest still matches, is hidden in the
 * attacker's Extensions for the signature's reference to resolve to.
 */
export function wrapSignature(signedXml: string, evilXml: string): string {
  const original = new DOMParser().parseFromString(signedXml, 'application/xml').documentElement!;
  const signature = signatureOf(original);
  original.removeChild(signature);
  const document = new DOMParser().parseFromString(evilXml, 'application/xml');
  const root = document.documentElement!;
  root.insertBefore(document.importNode(signature, true), issuerOf(root).nextSibling);
  appendExtensions(root, '').appendChild(document.importNode(original, true));
  return new XMLSerializer().serializeToString(document);
}

/**
 * What a verifier that only asks xml-crypto "is there a valid signature?" concludes, with the
 * registered certificate: true shows a wrapped message is a working attack on such a verifier, so
 * that Akamon's refusal of it is its own defence at work.
 */
export function naivelyVerifies(xml: string, certificatePem: string): boolean {
  const document = new DOMParser().parseFromString(xml, 'application/xml');
  const verifier = new SignedXml({ publicCert: certificatePem, getCertFromKeyInfo: () => null });
  verifier.loadSignature(document.getElementsByTagNameNS(DSIG_NS, 'Signature')[0]);
  try {
    return verifier.checkSignature(xml);
  } catch {
    return false;
  }
}

/**
 * The HTTP-Redirect URL of a signed request (bindings 3.4.4.1): the signature over
 * `SAMLRequest=..&RelayState=..&SigAlg=..` exactly as encoded, with the algorithm chosen (SHA-1 to
 * see it refused). `tamper` may change the query after signing.
 */
export function signedRedirectUrl(
  akamon: RunningAkamon,
  xml: string,
  key: { privatePem: string },
  options: { relayState?: string; sigAlg?: 'sha1' | 'sha256'; tamper?: (query: string) => string } = {},
): string {
  const sigAlg = options.sigAlg ?? 'sha256';
  const parts = [`SAMLRequest=${encodeURIComponent(deflateRawSync(Buffer.from(xml)).toString('base64'))}`];
  if (options.relayState !== undefined) parts.push(`RelayState=${encodeURIComponent(options.relayState)}`);
  parts.push(`SigAlg=${encodeURIComponent(sigAlg === 'sha1' ? XMLDSIG.rsaSha1 : XMLDSIG.rsaSha256)}`);
  const octets = parts.join('&');
  const signature = sign(sigAlg, Buffer.from(octets), key.privatePem).toString('base64');
  const query = `${octets}&Signature=${encodeURIComponent(signature)}`;
  return `${akamon.url}/saml/sso?${options.tamper ? options.tamper(query) : query}`;
}

/** The HTTP-POST binding: the browser submits the SP's form to /saml/sso (fields as given, so a test may send odd ones). */
export function postBinding(browser: Browser, akamon: RunningAkamon, fields: Record<string, string> | URLSearchParams): Promise<Response> {
  return browser.request(`${akamon.url}/saml/sso`, { method: 'POST', body: new URLSearchParams(fields), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
}

export const base64 = (xml: string) => Buffer.from(xml).toString('base64');

/**
 * Follows Akamon's redirects as Browser.visit does, but stops before /saml/continue: the URL the
 * browser would go to next (what a test then replays, races or alters), or the page it ended on.
 */
export async function untilContinue(browser: Browser, url: string, init: RequestInit = {}): Promise<{ continueUrl?: string; page?: Page }> {
  let response = await browser.request(url, init);
  let current = new URL(url, browser.origin).href;
  for (let hops = 0; hops < 20 && response.status >= 300 && response.status < 400; hops += 1) {
    const next = new URL(response.headers.get('location')!, current);
    if (next.pathname === '/saml/continue') return { continueUrl: next.href };
    current = next.href;
    response = await browser.request(current);
  }
  return { page: { status: response.status, url: current, html: await response.text(), headers: response.headers } };
}

/** Signs in on the pages an SP's request leads to (identifier, password), up to the way back to /saml/continue. */
export async function signInUntilContinue(browser: Browser, startUrl: string, account: { commonId: string; password: string }): Promise<string> {
  const first = await untilContinue(browser, startUrl);
  if (first.continueUrl) return first.continueUrl;
  let page = first.page!;
  if (/name="identifier"/.test(page.html)) page = await browser.submit(page, /\/identifier$/, { identifier: account.commonId });
  const { url, body } = browser.form(page, /\/password$/, { password: account.password });
  const after = await untilContinue(browser, url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  if (!after.continueUrl) throw new Error(`the sign-in did not come back to /saml/continue:\n${after.page?.html.slice(0, 1500)}`);
  return after.continueUrl;
}

/** Every message a refusal page may show, in each language: a refusal must say one of these (escaped as the page escapes text). */
const REFUSAL_KEYS = ['saml.refused', 'saml.malformed', 'saml.replayed', 'saml.expired'] as const;
const escapeHtml = (text: string) => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;');

/** What a SAML refusal must be: 400, Akamon's own page in the browser's language, no way onwards (no redirect, no form to an SP), no internals. */
export function refusalProblems(page: Page, language: 'en' | 'ja'): string[] {
  const problems: string[] = [];
  if (page.status !== 400) problems.push(`status ${page.status}`);
  if (page.headers.get('location')) problems.push(`redirects to ${page.headers.get('location')}`);
  if (postedTo(page) !== undefined) problems.push(`posts to ${postedTo(page)}`);
  const messages = language === 'en' ? en : ja;
  if (!REFUSAL_KEYS.some((key) => page.html.includes(escapeHtml(messages[key])))) problems.push(`no ${language} SAML refusal message`);
  if (/\bat [\w.<>]+ \(|SamlError|DomainError|node_modules/.test(page.html)) problems.push('internals on the page');
  return problems;
}

/** The log records written since `from` (an index into akamon.logs), parsed. */
export function logRecordsSince(akamon: RunningAkamon, from: number): Array<Record<string, unknown>> {
  return akamon.logs
    .slice(from)
    .join('')
    .split('\n')
    .filter((line) => line.trim().startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
