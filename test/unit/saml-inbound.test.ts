import { createHash, sign } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { beforeAll, describe, expect, test } from '@jest/globals';
import { SAML } from '@node-saml/node-saml';
import { DOMParser, type Document, type Element, XMLSerializer } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { readAuthnRequest } from '../../src/saml/authn-request.ts';
import { ALG, AUTHN_CONTEXT, BINDING, NAMEID_FORMAT, NS, STATUS } from '../../src/saml/constants.ts';
import { readLogoutRequest, readLogoutResponse } from '../../src/saml/logout-message.ts';
import { SamlError, type SamlErrorCode } from '../../src/saml/saml-error.ts';
import { decodePost, decodeRedirect, parseXml, readRelayState, verifyEmbeddedSignature, verifyRedirectSignature } from '../../src/saml/xml.ts';
import { type TestKeyPair, testKeyPair } from '../support/saml-keys.ts';

// Point 8 of issue 17 (hostile input) at the XML level: each attack is refused with the SamlError
// code the endpoints map to a page or a SAML status, never a 500 and never a value read from an
// unsigned part. Signed fixtures are made here with xml-crypto, node:crypto and node-saml (an
// independent SP library) from keys generated per run.

const SP = 'https://sp.example.ac.jp/shibboleth';
const SSO = 'https://id.example.ac.jp/saml/sso';
const SLO = 'https://id.example.ac.jp/saml/slo';
const ACS = 'https://sp.example.ac.jp/Shibboleth.sso/SAML2/POST';
const SHA1 = { rsa: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1', digest: 'http://www.w3.org/2000/09/xmldsig#sha1' };

let sp: TestKeyPair;
let spRollover: TestKeyPair;
let attacker: TestKeyPair;
let spEc: TestKeyPair;

beforeAll(async () => {
  [sp, spRollover, attacker, spEc] = await Promise.all([testKeyPair('rsa'), testKeyPair('rsa'), testKeyPair('rsa', 'evil.example'), testKeyPair('ec')]);
});

/** The SamlError an action throws (anything else, or nothing, fails the test). */
function refusal(action: () => unknown): SamlError {
  try {
    action();
  } catch (error) {
    if (error instanceof SamlError) return error;
    throw error;
  }
  throw new Error('expected a SamlError, nothing was thrown');
}

function expectRefused(action: () => unknown, code: SamlErrorCode, message?: RegExp): void {
  const error = refusal(action);
  expect(error.code).toBe(code);
  if (message) expect(error.message).toMatch(message);
}

interface RequestShape {
  id?: string;
  issuer?: string;
  attributes?: string;
  inner?: string;
}

function authnRequest({ id = '_req-1', issuer = SP, attributes = `AssertionConsumerServiceURL="${ACS}" ProtocolBinding="${BINDING.post}"`, inner = '' }: RequestShape = {}): string {
  return (
    `<samlp:AuthnRequest xmlns:samlp="${NS.protocol}" xmlns:saml="${NS.assertion}" ID="${id}" Version="2.0" ` +
    `IssueInstant="2025-06-01T09:30:00.123Z" Destination="${SSO}" ${attributes}><saml:Issuer>${issuer}</saml:Issuer>${inner}</samlp:AuthnRequest>`
  );
}

function logoutRequest(nameId = 'pairwise-1@example.ac.jp', inner = '<samlp:SessionIndex>_s1</samlp:SessionIndex>'): string {
  return (
    `<samlp:LogoutRequest xmlns:samlp="${NS.protocol}" xmlns:saml="${NS.assertion}" ID="_lr-1" Version="2.0" IssueInstant="2025-06-01T09:30:00Z" ` +
    `Destination="${SLO}" NotOnOrAfter="2025-06-01T09:35:00Z"><saml:Issuer>${SP}</saml:Issuer>` +
    `<saml:NameID Format="${NAMEID_FORMAT.persistent}" SPNameQualifier="${SP}">${nameId}</saml:NameID>${inner}</samlp:LogoutRequest>`
  );
}

/** xml-crypto signing classes for what it does not ship (it verifies nothing here: that is the code under test). */
function signingAlgorithm(uri: string, hash: string, dsaEncoding?: 'ieee-p1363') {
  return class {
    getAlgorithmName = () => uri;
    getSignature = (signedInfo: string, privateKey: string) => sign(hash, Buffer.from(signedInfo), { key: privateKey, dsaEncoding }).toString('base64');
    verifySignature = () => false;
  };
}

interface SignOptions {
  key?: TestKeyPair;
  algorithm?: string;
  digest?: string;
  transforms?: string[];
  /** XPath of the signed element. */
  reference?: string;
  emptyUri?: boolean;
  location?: { reference: string; action: 'append' | 'prepend' | 'before' | 'after' };
}

/** An enveloped XML signature as SPs make them (KeyInfo with the signer's certificate, right after Issuer by default). */
function signed(xml: string, options: SignOptions = {}): string {
  const key = options.key ?? sp;
  const signer = new SignedXml({ privateKey: key.privatePem, publicCert: key.certificatePem, signatureAlgorithm: options.algorithm ?? ALG.rsaSha256, canonicalizationAlgorithm: ALG.excC14n });
  signer.SignatureAlgorithms = {
    ...signer.SignatureAlgorithms,
    [ALG.rsaSha384]: signingAlgorithm(ALG.rsaSha384, 'sha384'),
    [ALG.ecdsaSha256]: signingAlgorithm(ALG.ecdsaSha256, 'sha256', 'ieee-p1363'),
  } as typeof signer.SignatureAlgorithms;
  signer.HashAlgorithms = {
    ...signer.HashAlgorithms,
    [ALG.sha384]: class {
      getAlgorithmName = () => ALG.sha384;
      getHash = (xml: string) => createHash('sha384').update(xml).digest('base64');
    },
  };
  signer.addReference({
    xpath: options.reference ?? '/*',
    transforms: options.transforms ?? [ALG.envelopedSignature, ALG.excC14n],
    digestAlgorithm: options.digest ?? ALG.sha256,
    isEmptyUri: options.emptyUri ?? false,
  });
  signer.computeSignature(xml, { prefix: 'ds', location: options.location ?? { reference: "/*/*[local-name()='Issuer']", action: 'after' } });
  return signer.getSignedXml();
}

/** The POST binding's form value for a message. */
function postValue(xml: string): string {
  return Buffer.from(xml, 'utf8').toString('base64');
}

interface RedirectOptions {
  param?: 'SAMLRequest' | 'SAMLResponse';
  relayState?: string;
  sign?: { key: TestKeyPair; sigAlg: string; hash: string; dsaEncoding?: 'der' | 'ieee-p1363' };
}

/** An HTTP-Redirect query as bindings 3.4.4.1 describes it, signed over the encoded octets. */
function redirectQuery(xml: string, options: RedirectOptions = {}): string {
  const parts = [`${options.param ?? 'SAMLRequest'}=${encodeURIComponent(deflateRawSync(Buffer.from(xml, 'utf8')).toString('base64'))}`];
  if (options.relayState !== undefined) parts.push(`RelayState=${encodeURIComponent(options.relayState)}`);
  if (!options.sign) return parts.join('&');
  parts.push(`SigAlg=${encodeURIComponent(options.sign.sigAlg)}`);
  const signature = sign(options.sign.hash, Buffer.from(parts.join('&')), { key: options.sign.key.privatePem, dsaEncoding: options.sign.dsaEncoding });
  return `${parts.join('&')}&Signature=${encodeURIComponent(signature.toString('base64'))}`;
}

function dom(xml: string): Document {
  return new DOMParser().parseFromString(xml, 'application/xml');
}

function serialize(document: Document): string {
  return new XMLSerializer().serializeToString(document);
}

/** Verifies a POST-binding message the way /saml/sso does: read first, then check the signature on the document read. */
function verifyPost(xml: string, certificates: string[] = [sp.certificatePem]): void {
  verifyEmbeddedSignature(readAuthnRequest(decodePost(postValue(xml))).document, certificates);
}

describe('parseXml', () => {
  test('accepts a message with an XML declaration and a byte order mark', () => {
    const document = parseXml(`\uFEFF<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n${authnRequest()}`);
    expect(document.documentElement!.localName).toBe('AuthnRequest');
  });

  test('a DOCTYPE is refused before parsing: billion laughs, external entities (XXE), parameter entities', () => {
    const laughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>`;
    const xxe = `<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><samlp:AuthnRequest xmlns:samlp="${NS.protocol}"><x>&xxe;</x></samlp:AuthnRequest>`;
    const parameter = `<!DOCTYPE r [<!ENTITY % remote SYSTEM "http://127.0.0.1:1/evil.dtd"> %remote;]><r/>`;
    const bare = '<!doctype r><r/>';
    for (const xml of [laughs, xxe, parameter, bare]) expectRefused(() => parseXml(xml), 'forbidden_xml');
  });

  test('a DOCTYPE hidden in an AuthnRequest on either binding is refused the same way', () => {
    const xxe = `<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${authnRequest({ issuer: '&xxe;' })}`;
    expectRefused(() => readAuthnRequest(decodePost(postValue(xxe))), 'forbidden_xml');
    expectRefused(() => readAuthnRequest(decodeRedirect(redirectQuery(xxe), 'SAMLRequest').xml), 'forbidden_xml');
  });

  test('processing instructions other than the XML declaration are refused', () => {
    expectRefused(() => parseXml(`<?xml-stylesheet href="http://evil.example/x.xsl"?>${authnRequest()}`), 'forbidden_xml', /xml-stylesheet/);
    expectRefused(() => parseXml(`${authnRequest()}<?php echo 1; ?>`), 'forbidden_xml');
  });

  test('XML that is not well-formed, or that xmldom would only warn about, is malformed', () => {
    for (const xml of ['', '<a><b></a>', '<a/><b/>', '<a x="1" x="2"/>', '<a><p:b/></a>', '<a>&undefined;</a>', 'not xml at all', '<?xml version="1.0"?><?xml version="1.0"?><a/>']) {
      expectRefused(() => parseXml(xml), 'malformed');
    }
  });

  test('characters XML 1.0 forbids are refused, raw or as character references', () => {
    for (const xml of ['<a>\u0000</a>', '<a>&#0;</a>', '<a>&#x1;</a>', '<a b="&#x1B;"/>', '<a>&#xD800;</a>', '<a>\uFFFE</a>']) expectRefused(() => parseXml(xml), 'malformed');
  });

  test('a declaration of another encoding than UTF-8 is unsupported', () => {
    expectRefused(() => parseXml(`<?xml version="1.0" encoding="ISO-8859-1"?>${authnRequest()}`), 'unsupported', /ISO-8859-1/);
    expect(parseXml(`<?xml version="1.0" encoding="utf-8"?>${authnRequest()}`).documentElement!.localName).toBe('AuthnRequest');
  });

  test('the size limit counts UTF-8 bytes, inclusively', () => {
    const xml = `<a>${'あ'.repeat(100)}</a>`;
    const bytes = Buffer.byteLength(xml);
    expect(parseXml(xml, bytes).documentElement!.localName).toBe('a');
    expectRefused(() => parseXml(xml, bytes - 1), 'too_large');
    expectRefused(() => parseXml(`<a>${'x'.repeat(64 * 1024)}</a>`), 'too_large');
  });

  test('nesting deeper than a SAML document needs is refused', () => {
    expect(parseXml(`${'<a>'.repeat(60)}${'</a>'.repeat(60)}`).documentElement!.localName).toBe('a');
    expectRefused(() => parseXml(`${'<a>'.repeat(5000)}${'</a>'.repeat(5000)}`), 'too_large', /deeper/);
  });
});

describe('bindings', () => {
  test('HTTP-Redirect: the message, the RelayState and the exact signed octets in the order bindings 3.4.4.1 gives', () => {
    const xml = authnRequest();
    const query = redirectQuery(xml, { relayState: 'ss:mem:4a5b/6c?x=1', sign: { key: sp, sigAlg: ALG.rsaSha256, hash: 'sha256' } });
    const message = decodeRedirect(`?${query}`, 'SAMLRequest');
    expect(message.xml).toBe(xml);
    expect(message.relayState).toBe('ss:mem:4a5b/6c?x=1');
    expect(message.signature!.sigAlg).toBe(ALG.rsaSha256);
    expect(message.signature!.signedOctets).toBe(query.slice(0, query.indexOf('&Signature=')));
    verifyRedirectSignature(message, [sp.certificatePem]);
  });

  test("HTTP-Redirect: the signed octets keep the sender's encoding and order, whatever order the query has", () => {
    const deflated = encodeURIComponent(deflateRawSync(Buffer.from(authnRequest())).toString('base64'));
    // Lower-case percent escapes and a space as '+' are what another encoder may produce.
    const relayState = 'a+b%2fc';
    const sigAlg = encodeURIComponent(ALG.rsaSha256).toLowerCase().replace('http%3a', 'http%3A');
    const signedOctets = `SAMLRequest=${deflated}&RelayState=${relayState}&SigAlg=${sigAlg}`;
    const signature = encodeURIComponent(sign('sha256', Buffer.from(signedOctets), sp.privatePem).toString('base64'));
    const message = decodeRedirect(`Signature=${signature}&SigAlg=${sigAlg}&extra=1&RelayState=${relayState}&SAMLRequest=${deflated}`, 'SAMLRequest');
    expect(message.signature!.signedOctets).toBe(signedOctets);
    expect(message.relayState).toBe('a b/c');
    verifyRedirectSignature(message, [sp.certificatePem]);
  });

  test('HTTP-Redirect: a base64 "+" the sender left unencoded still decodes', () => {
    // Find a request whose deflated base64 holds a '+', then send it without percent-encoding it.
    let xml = '';
    let base64 = '';
    for (let i = 0; !base64.includes('+'); i++) {
      xml = authnRequest({ id: `_plus-${i}` });
      base64 = deflateRawSync(Buffer.from(xml)).toString('base64');
    }
    expect(decodeRedirect(`SAMLRequest=${base64.replaceAll('/', '%2F').replaceAll('=', '%3D')}`, 'SAMLRequest').xml).toBe(xml);
  });

  test('HTTP-Redirect: a deflate bomb is refused after 64 KiB of output', () => {
    const bomb = deflateRawSync(Buffer.alloc(50 * 1024 * 1024, ' '));
    expect(bomb.length).toBeLessThan(64 * 1024);
    expectRefused(() => decodeRedirect(`SAMLRequest=${encodeURIComponent(bomb.toString('base64'))}`, 'SAMLRequest'), 'too_large', /inflates/);
  });

  test('HTTP-Redirect: malformed parameters are refused as malformed', () => {
    const good = encodeURIComponent(deflateRawSync(Buffer.from(authnRequest())).toString('base64'));
    const cases: Array<[string, RegExp]> = [
      ['', /no SAMLRequest/],
      ['SAMLResponse=abcd', /no SAMLRequest/],
      ['SAMLRequest=', /no SAMLRequest/],
      ['SAMLRequest=%ZZ', /URL-encoded/],
      ['SAMLRequest=abc*', /base64/],
      ['SAMLRequest=abcde', /base64/],
      [`SAMLRequest=${encodeURIComponent(Buffer.from(authnRequest()).toString('base64'))}`, /DEFLATE/],
      [`SAMLRequest=${good}&SAMLRequest=${good}`, /twice/],
      [`SAMLRequest=${good}&RelayState=a&RelayState=b`, /twice/],
      [`SAMLRequest=${good}&SigAlg=${encodeURIComponent(ALG.rsaSha256)}`, /without the other/],
      [`SAMLRequest=${good}&Signature=AAAA`, /without the other/],
      [`SAMLRequest=${good}&SigAlg=x&Signature=not*base64`, /base64/],
    ];
    for (const [query, message] of cases) expectRefused(() => decodeRedirect(query, 'SAMLRequest'), 'malformed', message);
  });

  test('HTTP-Redirect: another SAMLEncoding is unsupported, the DEFLATE one accepted', () => {
    const query = redirectQuery(authnRequest());
    expectRefused(() => decodeRedirect(`${query}&SAMLEncoding=urn%3Aexample%3Agzip`, 'SAMLRequest'), 'unsupported');
    expect(decodeRedirect(`${query}&SAMLEncoding=${encodeURIComponent('urn:oasis:names:tc:SAML:2.0:bindings:URL-Encoding:DEFLATE')}`, 'SAMLRequest').xml).toBe(authnRequest());
  });

  test('HTTP-Redirect: a message that is not UTF-8 is malformed', () => {
    const latin1 = Buffer.from(authnRequest({ issuer: 'https://sp.example.ac.jp/caf\u00e9' }), 'latin1');
    expectRefused(() => decodeRedirect(`SAMLRequest=${encodeURIComponent(deflateRawSync(latin1).toString('base64'))}`, 'SAMLRequest'), 'malformed', /UTF-8/);
  });

  test('HTTP-Redirect: a query too long to be a message is refused before it is read', () => {
    expectRefused(() => decodeRedirect(`SAMLRequest=${'A'.repeat(300 * 1024)}`, 'SAMLRequest'), 'too_large');
  });

  test('RelayState: up to 1024 bytes is kept, more is too_large, empty is none', () => {
    const query = redirectQuery(authnRequest());
    const longest = 'r'.repeat(1024);
    expect(decodeRedirect(`${query}&RelayState=${longest}`, 'SAMLRequest').relayState).toBe(longest);
    expectRefused(() => decodeRedirect(`${query}&RelayState=${longest}r`, 'SAMLRequest'), 'too_large', /RelayState/);
    // 342 three-byte characters: 1026 bytes in fewer than 1024 characters.
    expectRefused(() => readRelayState('あ'.repeat(342)), 'too_large');
    expect(decodeRedirect(`${query}&RelayState=`, 'SAMLRequest').relayState).toBeUndefined();
    expect(readRelayState('')).toBeUndefined();
    expect(readRelayState(undefined)).toBeUndefined();
    expect(readRelayState('https://sp.example.ac.jp/return?to=/home')).toBe('https://sp.example.ac.jp/return?to=/home');
  });

  test('HTTP-POST: base64 with line breaks decodes; oversized, non-base64 and non-UTF-8 values are refused', () => {
    const xml = authnRequest();
    const wrapped = postValue(xml).replace(/.{64}/g, '$&\r\n');
    expect(decodePost(wrapped)).toBe(xml);
    expectRefused(() => decodePost(Buffer.alloc(64 * 1024 + 1, 'a').toString('base64')), 'too_large');
    expectRefused(() => decodePost('x'.repeat(200 * 1024)), 'too_large');
    for (const value of ['', 'abc', 'ab!d', 'YWJj\u0000', 'YW=J']) expectRefused(() => decodePost(value), 'malformed', /base64/);
    expectRefused(() => decodePost(Buffer.from(`\uFEFF${xml}`, 'utf16le').toString('base64')), 'malformed', /UTF-8/);
  });
});

describe('readAuthnRequest', () => {
  test('reads every field the SSO endpoint decides on', () => {
    const request = readAuthnRequest(
      authnRequest({
        attributes: `AssertionConsumerServiceURL="${ACS}" ProtocolBinding="${BINDING.post}" ForceAuthn="true" IsPassive="0"`,
        inner:
          `<samlp:NameIDPolicy Format="${NAMEID_FORMAT.persistent}" AllowCreate="true"/>` +
          `<samlp:RequestedAuthnContext Comparison="minimum"><saml:AuthnContextClassRef>${AUTHN_CONTEXT.mfa}</saml:AuthnContextClassRef>` +
          `<saml:AuthnContextClassRef>\n  ${AUTHN_CONTEXT.passwordProtectedTransport}\n</saml:AuthnContextClassRef></samlp:RequestedAuthnContext>`,
      }),
    );
    expect(request).toMatchObject({
      id: '_req-1',
      issuer: SP,
      destination: SSO,
      acsUrl: ACS,
      acsIndex: null,
      protocolBinding: BINDING.post,
      forceAuthn: true,
      isPassive: false,
      nameIdFormat: NAMEID_FORMAT.persistent,
      requestedAuthnContext: { comparison: 'minimum', classRefs: [AUTHN_CONTEXT.mfa, AUTHN_CONTEXT.passwordProtectedTransport] },
    });
    expect(request.issueInstant.toISOString()).toBe('2025-06-01T09:30:00.123Z');
    expect(request.document.documentElement!.getAttribute('ID')).toBe('_req-1');
  });

  test('a minimal request: defaults for everything optional', () => {
    const request = readAuthnRequest(authnRequest({ attributes: 'AssertionConsumerServiceIndex="2"' }).replace(` Destination="${SSO}"`, ''));
    expect(request).toMatchObject({ destination: null, acsUrl: null, acsIndex: 2, protocolBinding: null, forceAuthn: false, isPassive: false, nameIdFormat: null, requestedAuthnContext: null });
  });

  test('a comment inside the Issuer cannot shorten it: all text is read, as the signature covers it', () => {
    // The 2018 SAML comment attacks: a reader taking the first text node would see "https://sp.example.ac.jp".
    expect(readAuthnRequest(authnRequest({ issuer: 'https://sp.example.ac.jp<!-- -->.evil.example' })).issuer).toBe('https://sp.example.ac.jp.evil.example');
    expect(readAuthnRequest(authnRequest({ issuer: '<![CDATA[https://sp.]]>example.ac.jp/<!---->shibboleth' })).issuer).toBe(SP);
  });

  test('an element inside the Issuer (an XInclude, say) is malformed, never followed', () => {
    const issuer = `<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/>`;
    expectRefused(() => readAuthnRequest(authnRequest({ issuer })), 'malformed', /text only/);
  });

  test('a second AuthnRequest or an Assertion in the document is malformed (signature wrapping shapes)', () => {
    const nested = authnRequest({ inner: `<samlp:Extensions>${authnRequest({ id: '_inner' })}</samlp:Extensions>` });
    expectRefused(() => readAuthnRequest(nested), 'malformed', /more than one AuthnRequest/);
    const assertion = authnRequest({ inner: `<samlp:Extensions><saml:Assertion ID="_a" Version="2.0" IssueInstant="2025-06-01T09:30:00Z"/></samlp:Extensions>` });
    expectRefused(() => readAuthnRequest(assertion), 'malformed', /Assertion/);
  });

  test('the root must be samlp:AuthnRequest', () => {
    expectRefused(() => readAuthnRequest(logoutRequest()), 'malformed', /AuthnRequest/);
    expectRefused(() => readAuthnRequest(authnRequest().replace(`xmlns:samlp="${NS.protocol}"`, 'xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol"')), 'malformed');
  });

  test('header problems: version, ID, IssueInstant, Issuer', () => {
    expectRefused(() => readAuthnRequest(authnRequest().replace('Version="2.0"', 'Version="1.1"')), 'unsupported', /version 1.1/);
    expectRefused(() => readAuthnRequest(authnRequest().replace('Version="2.0"', '')), 'malformed', /Version/);
    for (const id of ['1abc', 'a b', '', 'x:y', 'a'.repeat(257)]) expectRefused(() => readAuthnRequest(authnRequest({ id })), 'malformed', /ID/);
    for (const instant of ['2025-06-01', '2025-06-01T09:30:00+09:00', '2025-02-30T00:00:00Z', '2025-06-01T24:00:00Z', 'yesterday']) {
      expectRefused(() => readAuthnRequest(authnRequest().replace('2025-06-01T09:30:00.123Z', instant)), 'malformed', /IssueInstant/);
    }
    expect(readAuthnRequest(authnRequest().replace('2025-06-01T09:30:00.123Z', '2025-06-01T09:30:00')).issueInstant.toISOString()).toBe('2025-06-01T09:30:00.000Z');
    expectRefused(() => readAuthnRequest(authnRequest().replace(/<saml:Issuer>.*<\/saml:Issuer>/, '')), 'malformed', /no Issuer/);
    expectRefused(() => readAuthnRequest(authnRequest({ issuer: ' ' })), 'malformed', /Issuer/);
    expectRefused(() => readAuthnRequest(authnRequest({ inner: `<saml:Issuer>${SP}</saml:Issuer>` })), 'malformed', /2 Issuer/);
    expectRefused(() => readAuthnRequest(authnRequest().replace('<saml:Issuer>', `<saml:Issuer Format="${NAMEID_FORMAT.emailAddress}">`)), 'malformed', /Format/);
    expect(readAuthnRequest(authnRequest().replace('<saml:Issuer>', `<saml:Issuer Format="${NAMEID_FORMAT.entity}">`)).issuer).toBe(SP);
  });

  test('contradictory or invalid request attributes are malformed', () => {
    expectRefused(() => readAuthnRequest(authnRequest({ attributes: `AssertionConsumerServiceIndex="1" AssertionConsumerServiceURL="${ACS}"` })), 'malformed', /both/);
    expect(readAuthnRequest(authnRequest({ attributes: `AssertionConsumerServiceIndex="1" ProtocolBinding="${BINDING.post}"` })).acsIndex).toBe(1);
    for (const index of ['70000', '-1', 'one', '']) expectRefused(() => readAuthnRequest(authnRequest({ attributes: `AssertionConsumerServiceIndex="${index}"` })), 'malformed', /index/);
    expectRefused(() => readAuthnRequest(authnRequest({ attributes: 'ForceAuthn="yes"' })), 'malformed', /boolean/);
    expectRefused(() => readAuthnRequest(authnRequest({ inner: '<samlp:NameIDPolicy/><samlp:NameIDPolicy/>' })), 'malformed', /NameIDPolicy/);
  });

  test('RequestedAuthnContext: exact by default; bad comparisons and empty lists malformed; declaration references unsupported', () => {
    const context = (attributes: string, body: string) => authnRequest({ inner: `<samlp:RequestedAuthnContext ${attributes}>${body}</samlp:RequestedAuthnContext>` });
    const mfa = `<saml:AuthnContextClassRef>${AUTHN_CONTEXT.mfa}</saml:AuthnContextClassRef>`;
    expect(readAuthnRequest(context('', mfa)).requestedAuthnContext).toEqual({ comparison: 'exact', classRefs: [AUTHN_CONTEXT.mfa] });
    expectRefused(() => readAuthnRequest(context('Comparison="most"', mfa)), 'malformed', /Comparison/);
    expectRefused(() => readAuthnRequest(context('', '')), 'malformed', /no authentication context class/);
    expectRefused(() => readAuthnRequest(context('', '<saml:AuthnContextClassRef> </saml:AuthnContextClassRef>')), 'malformed');
    expectRefused(() => readAuthnRequest(context('', '<saml:AuthnContextDeclRef>urn:example:decl</saml:AuthnContextDeclRef>')), 'unsupported');
  });

  test('requests made by node-saml (an independent SP library) read as sent', async () => {
    const saml = new SAML({ callbackUrl: ACS, entryPoint: SSO, issuer: SP, idpCert: sp.certificatePem, forceAuthn: true });
    const query = new URL(await saml.getAuthorizeUrlAsync('relay-1', undefined, {})).search;
    const message = decodeRedirect(query, 'SAMLRequest');
    const request = readAuthnRequest(message.xml);
    expect(message.relayState).toBe('relay-1');
    expect(message.signature).toBeUndefined();
    expect(request).toMatchObject({
      issuer: SP,
      destination: SSO,
      acsUrl: ACS,
      protocolBinding: BINDING.post,
      forceAuthn: true,
      requestedAuthnContext: { comparison: 'exact', classRefs: [AUTHN_CONTEXT.passwordProtectedTransport] },
    });
    expectRefused(() => verifyRedirectSignature(message, [sp.certificatePem]), 'unsigned');
  });
});

describe('readLogoutRequest and readLogoutResponse', () => {
  test('a LogoutRequest: NameID with its qualifiers, session indexes, expiry', () => {
    const request = readLogoutRequest(logoutRequest('pairwise-1@example.ac.jp', '<samlp:SessionIndex>_s1</samlp:SessionIndex><samlp:SessionIndex>_s2</samlp:SessionIndex>'));
    expect(request).toMatchObject({
      id: '_lr-1',
      issuer: SP,
      destination: SLO,
      nameId: { value: 'pairwise-1@example.ac.jp', format: NAMEID_FORMAT.persistent, spNameQualifier: SP },
      sessionIndexes: ['_s1', '_s2'],
    });
    expect(request.issueInstant.toISOString()).toBe('2025-06-01T09:30:00.000Z');
    expect(request.notOnOrAfter!.toISOString()).toBe('2025-06-01T09:35:00.000Z');
  });

  test('a comment inside the NameID cannot shorten it', () => {
    expect(readLogoutRequest(logoutRequest('admin@example.ac.jp<!---->.evil.example')).nameId.value).toBe('admin@example.ac.jp.evil.example');
  });

  test('refusals: no NameID, an empty one, EncryptedID, a nested LogoutRequest, the wrong root', () => {
    expectRefused(() => readLogoutRequest(logoutRequest().replace(/<saml:NameID.*<\/saml:NameID>/, '')), 'malformed', /NameID/);
    expectRefused(() => readLogoutRequest(logoutRequest(' ')), 'malformed', /empty NameID/);
    expectRefused(() => readLogoutRequest(logoutRequest('x', '<saml:EncryptedID/>')), 'unsupported');
    expectRefused(() => readLogoutRequest(logoutRequest('x', `<samlp:Extensions>${logoutRequest()}</samlp:Extensions>`)), 'malformed', /more than one/);
    expectRefused(() => readLogoutRequest(authnRequest()), 'malformed');
    expectRefused(() => readLogoutRequest(logoutRequest('x', '<samlp:SessionIndex/>')), 'malformed', /SessionIndex/);
  });

  test('a LogoutResponse: status and InResponseTo', () => {
    const response = (status: string) =>
      `<samlp:LogoutResponse xmlns:samlp="${NS.protocol}" xmlns:saml="${NS.assertion}" ID="_resp-1" Version="2.0" IssueInstant="2025-06-01T09:30:00Z" ` +
      `InResponseTo="_lr-9"><saml:Issuer>${SP}</saml:Issuer>${status}</samlp:LogoutResponse>`;
    expect(readLogoutResponse(response(`<samlp:Status><samlp:StatusCode Value="${STATUS.success}"/></samlp:Status>`))).toMatchObject({
      id: '_resp-1',
      issuer: SP,
      inResponseTo: '_lr-9',
      statusCode: STATUS.success,
    });
    const partial = `<samlp:Status><samlp:StatusCode Value="${STATUS.responder}"><samlp:StatusCode Value="${STATUS.partialLogout}"/></samlp:StatusCode></samlp:Status>`;
    expect(readLogoutResponse(response(partial)).statusCode).toBe(STATUS.responder);
    expectRefused(() => readLogoutResponse(response('')), 'malformed', /Status/);
    expectRefused(() => readLogoutResponse(response('<samlp:Status><samlp:StatusCode/></samlp:Status>')), 'malformed', /Value/);
  });

  test('a LogoutRequest made and signed by node-saml over HTTP-Redirect reads and verifies', async () => {
    const saml = new SAML({ callbackUrl: ACS, entryPoint: SSO, issuer: SP, idpCert: sp.certificatePem, logoutUrl: SLO, privateKey: sp.privatePem, signatureAlgorithm: 'sha256' });
    const url = await saml.getLogoutUrlAsync({ issuer: SP, nameID: 'pairwise-1', nameIDFormat: NAMEID_FORMAT.persistent, sessionIndex: '_s9' }, 'back', {});
    const message = decodeRedirect(new URL(url).search, 'SAMLRequest');
    const request = readLogoutRequest(message.xml);
    expect(request).toMatchObject({ issuer: SP, destination: SLO, nameId: { value: 'pairwise-1', format: NAMEID_FORMAT.persistent }, sessionIndexes: ['_s9'] });
    verifyRedirectSignature(message, [sp.certificatePem]);
    expectRefused(() => verifyRedirectSignature(message, [attacker.certificatePem]), 'bad_signature');
  });
});

describe('verifyRedirectSignature', () => {
  const request = () => authnRequest();

  test('RSA-SHA256, RSA-SHA384 and RSA-SHA512 verify; the second registered certificate counts (rollover)', () => {
    for (const [sigAlg, hash] of [
      [ALG.rsaSha256, 'sha256'],
      [ALG.rsaSha384, 'sha384'],
      [ALG.rsaSha512, 'sha512'],
    ]) {
      const message = decodeRedirect(redirectQuery(request(), { relayState: 'r', sign: { key: sp, sigAlg, hash } }), 'SAMLRequest');
      verifyRedirectSignature(message, [spRollover.certificatePem, sp.certificatePem]);
    }
  });

  test('ECDSA-SHA256 verifies in both signature encodings in use (r||s and DER)', () => {
    for (const dsaEncoding of ['ieee-p1363', 'der'] as const) {
      const message = decodeRedirect(redirectQuery(request(), { sign: { key: spEc, sigAlg: ALG.ecdsaSha256, hash: 'sha256', dsaEncoding } }), 'SAMLRequest');
      verifyRedirectSignature(message, [spEc.certificatePem]);
    }
  });

  test('no signature is unsigned', () => {
    expectRefused(() => verifyRedirectSignature(decodeRedirect(redirectQuery(request()), 'SAMLRequest'), [sp.certificatePem]), 'unsigned');
  });

  test('SHA-1 is refused even when the signature is genuine', async () => {
    const message = decodeRedirect(redirectQuery(request(), { sign: { key: sp, sigAlg: SHA1.rsa, hash: 'sha1' } }), 'SAMLRequest');
    expectRefused(() => verifyRedirectSignature(message, [sp.certificatePem]), 'bad_signature', /SHA-1/);
    // node-saml signs with SHA-1 unless told otherwise: such an SP is refused, not silently accepted.
    const saml = new SAML({ callbackUrl: ACS, entryPoint: SSO, issuer: SP, idpCert: sp.certificatePem, privateKey: sp.privatePem });
    const sha1 = decodeRedirect(new URL(await saml.getAuthorizeUrlAsync('', undefined, {})).search, 'SAMLRequest');
    expectRefused(() => verifyRedirectSignature(sha1, [sp.certificatePem]), 'bad_signature', /SHA-1/);
    expectRefused(() => verifyRedirectSignature({ signature: { ...message.signature!, sigAlg: 'urn:example:none' } }, [sp.certificatePem]), 'bad_signature', /not accepted/);
  });

  test("node-saml's RSA-SHA256 redirect AuthnRequest verifies", async () => {
    const saml = new SAML({ callbackUrl: ACS, entryPoint: SSO, issuer: SP, idpCert: sp.certificatePem, privateKey: sp.privatePem, signatureAlgorithm: 'sha256' });
    const message = decodeRedirect(new URL(await saml.getAuthorizeUrlAsync('relay/ü', undefined, {})).search, 'SAMLRequest');
    expect(message.relayState).toBe('relay/ü');
    verifyRedirectSignature(message, [sp.certificatePem]);
  });

  test('a certificate that did not sign, a changed RelayState or message, and no certificate at all are bad_signature', () => {
    const query = redirectQuery(request(), { relayState: 'home', sign: { key: sp, sigAlg: ALG.rsaSha256, hash: 'sha256' } });
    expectRefused(() => verifyRedirectSignature(decodeRedirect(query, 'SAMLRequest'), [attacker.certificatePem]), 'bad_signature');
    expectRefused(() => verifyRedirectSignature(decodeRedirect(query.replace('RelayState=home', 'RelayState=evil'), 'SAMLRequest'), [sp.certificatePem]), 'bad_signature');
    const other = encodeURIComponent(deflateRawSync(Buffer.from(authnRequest({ id: '_other' }))).toString('base64'));
    expectRefused(() => verifyRedirectSignature(decodeRedirect(query.replace(/^SAMLRequest=[^&]*/, `SAMLRequest=${other}`), 'SAMLRequest'), [sp.certificatePem]), 'bad_signature');
    expectRefused(() => verifyRedirectSignature(decodeRedirect(query, 'SAMLRequest'), []), 'bad_signature');
    // A registered certificate that does not load verifies nothing, and the others still count.
    expectRefused(() => verifyRedirectSignature(decodeRedirect(query, 'SAMLRequest'), ['not a certificate']), 'bad_signature');
    verifyRedirectSignature(decodeRedirect(query, 'SAMLRequest'), ['not a certificate', sp.certificatePem]);
  });

  test('the algorithm must match the key: an ECDSA signature announced as RSA-SHA256 is refused', () => {
    const message = decodeRedirect(redirectQuery(request(), { sign: { key: spEc, sigAlg: ALG.rsaSha256, hash: 'sha256', dsaEncoding: 'der' } }), 'SAMLRequest');
    expectRefused(() => verifyRedirectSignature(message, [spEc.certificatePem]), 'bad_signature');
  });
});

describe('verifyEmbeddedSignature', () => {
  test('an enveloped RSA-SHA256 signature over the whole request verifies, also with the second registered certificate', () => {
    verifyPost(signed(authnRequest()));
    verifyPost(signed(authnRequest()), [spRollover.certificatePem, sp.certificatePem]);
    verifyPost(signed(authnRequest(), { algorithm: ALG.rsaSha512, digest: ALG.sha512 }));
    verifyPost(signed(authnRequest(), { algorithm: ALG.rsaSha384, digest: ALG.sha384 }));
  });

  test('ECDSA-SHA256 verifies with an EC certificate, and not with an RSA one', () => {
    const xml = signed(authnRequest(), { key: spEc, algorithm: ALG.ecdsaSha256 });
    verifyPost(xml, [spEc.certificatePem]);
    expectRefused(() => verifyPost(xml, [sp.certificatePem]), 'bad_signature');
  });

  test("node-saml's signed HTTP-POST AuthnRequest verifies; its SHA-1 default is refused", async () => {
    // node-saml deflates POST requests unless told not to; the POST binding (3.5.4) carries them plain.
    const options = { callbackUrl: ACS, entryPoint: SSO, issuer: SP, idpCert: sp.certificatePem, privateKey: sp.privatePem, authnRequestBinding: 'HTTP-POST', skipRequestCompression: true };
    const sha256 = await new SAML({ ...options, signatureAlgorithm: 'sha256', digestAlgorithm: 'sha256' }).getAuthorizeMessageAsync('relay-2', undefined, {});
    const request = readAuthnRequest(decodePost(sha256.SAMLRequest as string));
    expect(request).toMatchObject({ issuer: SP, acsUrl: ACS, destination: SSO });
    verifyEmbeddedSignature(request.document, [sp.certificatePem]);
    const sha1 = await new SAML(options).getAuthorizeMessageAsync('relay-2', undefined, {});
    expectRefused(() => verifyEmbeddedSignature(readAuthnRequest(decodePost(sha1.SAMLRequest as string)).document, [sp.certificatePem]), 'bad_signature', /sha1/);
    const deflated = await new SAML({ ...options, skipRequestCompression: false }).getAuthorizeMessageAsync('relay-2', undefined, {});
    expectRefused(() => decodePost(deflated.SAMLRequest as string), 'malformed');
  });

  test('no signature is unsigned', () => {
    expectRefused(() => verifyPost(authnRequest()), 'unsigned');
  });

  test('a changed signed value is bad_signature', () => {
    const xml = signed(authnRequest());
    expectRefused(() => verifyPost(xml.replace(ACS, 'https://evil.example/acs')), 'bad_signature', /digest/);
    expectRefused(() => verifyPost(xml.replace('ForceAuthn', 'x').replace('<saml:Issuer>', '<saml:Issuer>x')), 'bad_signature');
  });

  test('SHA-1 signature or digest algorithms are refused even when the signature is genuine', () => {
    expectRefused(() => verifyPost(signed(authnRequest(), { algorithm: SHA1.rsa })), 'bad_signature', /rsa-sha1/);
    expectRefused(() => verifyPost(signed(authnRequest(), { digest: SHA1.digest })), 'bad_signature', /sha1/);
  });

  test("the certificate in the message's KeyInfo is never used: an attacker's own signature is refused", () => {
    const forged = signed(authnRequest(), { key: attacker });
    expect(forged).toContain(attacker.certificatePem.split('\n')[1]);
    expectRefused(() => verifyPost(forged), 'bad_signature');
    expectRefused(() => verifyPost(signed(authnRequest()), []), 'bad_signature', /no certificate/);
  });

  test('wrapping: the genuine signed request moved inside a forged root is refused by the reader and by the verifier', () => {
    const genuine = dom(signed(authnRequest({ id: '_genuine' })));
    const signature = genuine.getElementsByTagNameNS(NS.dsig, 'Signature')[0];
    genuine.documentElement!.removeChild(signature);
    const forged = dom(authnRequest({ id: '_forged', attributes: 'AssertionConsumerServiceURL="https://evil.example/acs"', inner: '<samlp:Extensions/>' }));
    const root = forged.documentElement!;
    const issuer = root.getElementsByTagNameNS(NS.assertion, 'Issuer')[0];
    root.insertBefore(forged.importNode(signature, true), issuer.nextSibling);
    root.getElementsByTagNameNS(NS.protocol, 'Extensions')[0].appendChild(forged.importNode(genuine.documentElement!, true));
    const xml = serialize(forged);
    expectRefused(() => readAuthnRequest(xml), 'malformed', /more than one AuthnRequest/);
    // Even a caller that parsed it some other way gets no verified forged root.
    expectRefused(() => verifyEmbeddedSignature(parseXml(xml), [sp.certificatePem]), 'bad_signature', /references #_genuine/);
  });

  test('wrapping: a signature over another element than the root (Reference URI to another ID) is refused', () => {
    const xml = authnRequest({ inner: '<samlp:Extensions><x:Data xmlns:x="urn:example:x" ID="_data">harmless</x:Data></samlp:Extensions>' });
    const overChild = signed(xml, { reference: "//*[local-name()='Data']" });
    expect(overChild).toContain('URI="#_data"');
    expectRefused(() => verifyPost(overChild), 'bad_signature', /references #_data, not the message #_req-1/);
  });

  test('a Reference to the whole document (URI="") is refused: only #ID of the root counts', () => {
    const xml = signed(authnRequest(), { emptyUri: true });
    expect(xml).toContain('URI=""');
    expectRefused(() => verifyPost(xml), 'bad_signature', /whole document/);
  });

  test('two Signature elements are refused', () => {
    const twice = signed(signed(authnRequest()), { key: spRollover, location: { reference: '/*', action: 'append' } });
    expectRefused(() => verifyPost(twice, [sp.certificatePem, spRollover.certificatePem]), 'bad_signature', /2 signatures/);
  });

  test('a Signature that is not a child of the root is refused, although it covers the root', () => {
    const xml = signed(authnRequest({ inner: '<samlp:Extensions/>' }), { location: { reference: "//*[local-name()='Extensions']", action: 'append' } });
    expectRefused(() => verifyPost(xml), 'bad_signature', /not a child/);
  });

  test('an ID that appears twice is refused (the reference could resolve to the other element)', () => {
    const xml = signed(authnRequest({ inner: '<samlp:Extensions/>' })).replace('<samlp:Extensions/>', '<samlp:Extensions><x:Data xmlns:x="urn:example:x" ID="_req-1"/></samlp:Extensions>');
    expectRefused(() => verifyPost(xml), 'bad_signature', /_req-1 appears twice/);
    const lowerCase = signed(authnRequest({ inner: '<samlp:Extensions/>' })).replace('<samlp:Extensions/>', '<samlp:Extensions><x:Data xmlns:x="urn:example:x" id="_req-1"/></samlp:Extensions>');
    expectRefused(() => verifyPost(lowerCase), 'bad_signature', /twice/);
  });

  test('transforms other than enveloped signature and exclusive c14n (comments kept in the signed form) are refused', () => {
    const xml = signed(authnRequest(), { transforms: [ALG.envelopedSignature, 'http://www.w3.org/2001/10/xml-exc-c14n#WithComments'] });
    expectRefused(() => verifyPost(xml), 'bad_signature', /transforms/);
  });

  test('comments added to a signed NameID after signing leave the signature valid and the value whole', () => {
    const xml = signed(logoutRequest('admin@example.ac.jp.evil.example')).replace('admin@example.ac.jp.evil.example', 'admin@example.ac.jp<!---->.evil.example');
    const request = readLogoutRequest(xml);
    verifyEmbeddedSignature(request.document, [sp.certificatePem]);
    expect(request.nameId.value).toBe('admin@example.ac.jp.evil.example');
  });

  test('a root without a usable ID cannot be the signed message', () => {
    const xml = signed(authnRequest());
    const document = parseXml(xml);
    (document.documentElement as Element).removeAttribute('ID');
    expectRefused(() => verifyEmbeddedSignature(document, [sp.certificatePem]), 'bad_signature', /no valid ID/);
  });
});
