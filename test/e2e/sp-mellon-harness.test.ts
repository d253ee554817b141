import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { DOMParser, type Element } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { ALG, ATTRIBUTE, ATTRNAME_FORMAT, AUTHN_CONTEXT, BINDING, NAMEID_FORMAT, NS, STATUS, SUBJECT_CONFIRMATION_BEARER } from '../../src/saml/constants.ts';
import { Browser } from '../support/browser.ts';
import { MELLON_PACKAGES, readMellonPage, startMellonSp, type MellonSp } from '../support/mellon-sp.ts';
import { missingPackage } from '../support/relying-party.ts';

// The SAML SP harness (test/support/mellon-sp.ts) without Akamon: Apache with mod_auth_mellon
// against a throwaway IdP played by this file (its metadata, a key made here, signed messages
// built with xml-crypto), so that the Akamon SAML tests can rely on what the SP sends and shows.

const unavailable = missingPackage(MELLON_PACKAGES);

/** The throwaway IdP: nothing listens there, the test answers in its place. */
const IDP = { entityId: 'https://idp.example.test/saml/metadata', sso: 'https://idp.example.test/saml/sso', slo: 'https://idp.example.test/saml/slo' };

let idpKey: { privatePem: string; certificatePem: string };
let sp: MellonSp;

/** A new RSA key and a self-signed certificate for it, as openssl makes them. */
async function newKey(): Promise<{ privatePem: string; certificatePem: string }> {
  const { stdout } = await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=idp.example.test', '-days', '1', '-keyout', '-', '-out', '-']);
  const pem = (label: string) => new RegExp(`-----BEGIN ${label}-----[^-]+-----END ${label}-----`).exec(stdout)![0];
  return { privatePem: pem('PRIVATE KEY'), certificatePem: pem('CERTIFICATE') };
}

/** The base64 body of a PEM certificate, as metadata and KeyInfo carry it. */
const certificateBody = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s/g, '');

function idpMetadata(certificatePem: string): string {
  return `<md:EntityDescriptor xmlns:md="${NS.metadata}" xmlns:ds="${NS.dsig}" entityID="${IDP.entityId}">
  <md:IDPSSODescriptor protocolSupportEnumeration="${NS.protocol}" WantAuthnRequestsSigned="false">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${certificateBody(certificatePem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleLogoutService Binding="${BINDING.redirect}" Location="${IDP.slo}"/>
    <md:NameIDFormat>${NAMEID_FORMAT.persistent}</md:NameIDFormat>
    <md:SingleSignOnService Binding="${BINDING.redirect}" Location="${IDP.sso}"/>
    <md:SingleSignOnService Binding="${BINDING.post}" Location="${IDP.sso}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`;
}

/** The root element of an XML message. */
const parse = (xml: string): Element => new DOMParser().parseFromString(xml, 'text/xml').documentElement!;
const first = (root: Element, ns: string, name: string) => root.getElementsByTagNameNS(ns, name)[0];
const textOf = (root: Element, ns: string, name: string) => first(root, ns, name)?.textContent?.trim();

/**
 * A message the SP sent over the HTTP-Redirect binding (a Location): where to, the inflated XML,
 * the RelayState, and whether the query signature verifies with `certificate` (bindings 3.4.4.1:
 * the signed octets are the parameters as they appear in the URL).
 */
function redirectMessage(location: string, param: 'SAMLRequest' | 'SAMLResponse') {
  const url = new URL(location);
  const raw = new Map(
    url.search
      .slice(1)
      .split('&')
      .map((part) => [part.slice(0, part.indexOf('=')), part] as const),
  );
  const signedOctets = [param, 'RelayState', 'SigAlg'].flatMap((name) => raw.get(name) ?? []).join('&');
  return {
    endpoint: `${url.origin}${url.pathname}`,
    root: parse(zlib.inflateRawSync(Buffer.from(url.searchParams.get(param)!, 'base64')).toString('utf8')),
    relayState: url.searchParams.get('RelayState'),
    sigAlg: url.searchParams.get('SigAlg'),
    verifies: (certificate: crypto.X509Certificate) => crypto.verify('sha256', Buffer.from(signedOctets), certificate.publicKey, Buffer.from(url.searchParams.get('Signature') ?? '', 'base64')),
  };
}

/** The IdP's answer over HTTP-Redirect: the deflated message, RelayState and SigAlg, signed with the IdP's key. */
function signedRedirectQuery(param: 'SAMLResponse', xml: string, relayState: string): string {
  const octets = `${param}=${encodeURIComponent(zlib.deflateRawSync(xml).toString('base64'))}&RelayState=${encodeURIComponent(relayState)}&SigAlg=${encodeURIComponent(ALG.rsaSha256)}`;
  return `${octets}&Signature=${encodeURIComponent(crypto.sign('sha256', Buffer.from(octets), idpKey.privatePem).toString('base64'))}`;
}

const newId = () => `_${crypto.randomBytes(16).toString('hex')}`;

/** The IdP's Response to the AuthnRequest `inResponseTo`: a signed assertion about `subject` for the SP. */
function signedResponse(inResponseTo: string, subject: { nameId: string; sessionIndex: string; attributes: Array<{ name: string; values: string[] }> }): string {
  const now = new Date().toISOString();
  const later = new Date(Date.now() + 300_000).toISOString();
  const attributes = subject.attributes
    .map(({ name, values }) => `<saml:Attribute Name="${name}" NameFormat="${ATTRNAME_FORMAT.uri}">${values.map((v) => `<saml:AttributeValue>${v}</saml:AttributeValue>`).join('')}</saml:Attribute>`)
    .join('');
  const assertion = `<saml:Assertion xmlns:saml="${NS.assertion}" ID="${newId()}" Version="2.0" IssueInstant="${now}"><saml:Issuer>${IDP.entityId}</saml:Issuer><saml:Subject><saml:NameID Format="${NAMEID_FORMAT.persistent}">${subject.nameId}</saml:NameID><saml:SubjectConfirmation Method="${SUBJECT_CONFIRMATION_BEARER}"><saml:SubjectConfirmationData InResponseTo="${inResponseTo}" NotOnOrAfter="${later}" Recipient="${sp.acsUrl}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="${now}" NotOnOrAfter="${later}"><saml:AudienceRestriction><saml:Audience>${sp.entityId}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant="${now}" SessionIndex="${subject.sessionIndex}"><saml:AuthnContext><saml:AuthnContextClassRef>${AUTHN_CONTEXT.passwordProtectedTransport}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement>${attributes}</saml:AttributeStatement></saml:Assertion>`;
  const signer = new SignedXml({ privateKey: idpKey.privatePem, publicCert: idpKey.certificatePem, signatureAlgorithm: ALG.rsaSha256, canonicalizationAlgorithm: ALG.excC14n });
  signer.addReference({ xpath: '/*', transforms: [ALG.envelopedSignature, ALG.excC14n], digestAlgorithm: ALG.sha256 });
  signer.computeSignature(assertion, { prefix: 'ds', location: { reference: "/*/*[local-name()='Issuer']", action: 'after' } });
  return `<samlp:Response xmlns:samlp="${NS.protocol}" xmlns:saml="${NS.assertion}" ID="${newId()}" Version="2.0" IssueInstant="${now}" Destination="${sp.acsUrl}" InResponseTo="${inResponseTo}"><saml:Issuer>${IDP.entityId}</saml:Issuer><samlp:Status><samlp:StatusCode Value="${STATUS.success}"/></samlp:Status>${signer.getSignedXml()}</samlp:Response>`;
}

/** The SP's signing certificate, from its metadata. */
function spCertificate(): crypto.X509Certificate {
  const descriptor = [...parse(sp.metadataXml).getElementsByTagNameNS(NS.metadata, 'KeyDescriptor')].find((d) => d.getAttribute('use') === 'signing')!;
  return new crypto.X509Certificate(Buffer.from(descriptor.getElementsByTagNameNS(NS.dsig, 'X509Certificate')[0].textContent!.replace(/\s/g, ''), 'base64'));
}

/** A browser sent by the SP's protected page to the IdP: the AuthnRequest it carries. */
async function sentToIdp(browser: Browser) {
  const page = await browser.visit(sp.protectedUrl);
  expect(page.status).toBe(303);
  return redirectMessage(page.url, 'SAMLRequest');
}

(unavailable ? describe.skip : describe)(`SAML SP harness: Apache httpd with mod_auth_mellon${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  beforeAll(async () => {
    idpKey = await newKey();
    sp = await startMellonSp({ idpMetadataXml: idpMetadata(idpKey.certificatePem) });
  });
  afterAll(async () => {
    await sp?.stop();
  });

  test("the SP's metadata (mellon_create_metadata): its entityID, the HTTP-POST ACS, HTTP-Redirect SLO; mellon serves it", async () => {
    expect(sp.entityId).toBe(`${sp.url}/mellon/metadata`);
    const metadata = parse(sp.metadataXml);
    expect(metadata.getAttribute('entityID')).toBe(sp.entityId);
    expect(first(metadata, NS.metadata, 'SPSSODescriptor').getAttribute('AuthnRequestsSigned')).toBe('true');
    const acs = first(metadata, NS.metadata, 'AssertionConsumerService');
    expect([acs.getAttribute('Binding'), acs.getAttribute('Location')]).toEqual([BINDING.post, sp.acsUrl]);
    expect(sp.acsUrl).toBe(`${sp.url}/mellon/postResponse`);
    const slo = first(metadata, NS.metadata, 'SingleLogoutService');
    expect([slo.getAttribute('Binding'), slo.getAttribute('Location')]).toEqual([BINDING.redirect, `${sp.url}/mellon/logout`]);

    const served = await fetch(sp.entityId);
    expect(served.status).toBe(200);
    expect(await served.text()).toBe(sp.metadataXml);
  });

  test('GET on the protected path sends the browser to the IdP with a signed AuthnRequest naming the SP and its ACS', async () => {
    const browser = new Browser(sp.url);
    const request = await sentToIdp(browser);
    expect(request.endpoint).toBe(IDP.sso);
    const root = request.root;
    expect([root.namespaceURI, root.localName]).toEqual([NS.protocol, 'AuthnRequest']);
    expect(textOf(root, NS.assertion, 'Issuer')).toBe(sp.entityId);
    expect(root.getAttribute('AssertionConsumerServiceURL')).toBe(`${sp.url}/mellon/postResponse`);
    expect(root.getAttribute('Destination')).toBe(IDP.sso);
    expect(request.relayState).toBe(sp.protectedUrl);
    expect(request.sigAlg).toBe(ALG.rsaSha256);
    expect(request.verifies(spCertificate())).toBe(true);
    // mellon's cookie test: the cookie it wants back with the response, without SameSite=None
    // (which a browser refuses on plain http without Secure).
    const login = await fetch(`${sp.url}/mellon/login?ReturnTo=${encodeURIComponent(sp.protectedUrl)}`, { redirect: 'manual' });
    expect(login.headers.getSetCookie()).toEqual([expect.stringMatching(/^mellon-cookie=cookietest; .*HttpOnly/)]);
    expect(login.headers.getSetCookie()[0]).not.toMatch(/SameSite|secure/i);
  });

  test('a signed Response signs the person in: the page shows the NameID and each attribute; logout goes through the IdP and ends the session', async () => {
    const browser = new Browser(sp.url);
    const request = await sentToIdp(browser);
    const response = signedResponse(request.root.getAttribute('ID')!, {
      nameId: 'pw-5f3a',
      sessionIndex: '_session-1',
      attributes: [
        { name: ATTRIBUTE.mail, values: ['hanako@example.ac.jp'] },
        { name: ATTRIBUTE.eduPersonAffiliation, values: ['faculty', 'member'] },
        { name: ATTRIBUTE.jaDisplayName, values: ['山田 花子'] },
        { name: 'urn:example:unlisted', values: ['x'] },
      ],
    });
    const back = await browser.visit(sp.acsUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ SAMLResponse: Buffer.from(response).toString('base64'), RelayState: request.relayState! }),
    });
    expect(back.url).toBe(sp.protectedUrl);
    expect(back.status).toBe(200);
    expect(readMellonPage(back.html)).toEqual({
      remoteUser: 'pw-5f3a',
      nameId: 'pw-5f3a',
      idp: IDP.entityId,
      attributes: {
        mail: ['hanako@example.ac.jp'],
        eduPersonAffiliation: ['faculty', 'member'],
        jaDisplayName: ['山田 花子'],
        // Without a MellonSetEnv name: the Attribute's Name as Apache passes it to a CGI program.
        urn_example_unlisted: ['x'],
      },
    });

    // SP-initiated logout: a signed LogoutRequest for that NameID and session to the IdP's SLO URL...
    const logout = await browser.visit(sp.logoutUrl(`${sp.url}/`));
    expect(logout.status).toBe(303);
    const logoutRequest = redirectMessage(logout.url, 'SAMLRequest');
    expect(logoutRequest.endpoint).toBe(IDP.slo);
    expect([logoutRequest.root.namespaceURI, logoutRequest.root.localName]).toEqual([NS.protocol, 'LogoutRequest']);
    expect(textOf(logoutRequest.root, NS.assertion, 'Issuer')).toBe(sp.entityId);
    expect(textOf(logoutRequest.root, NS.assertion, 'NameID')).toBe('pw-5f3a');
    expect(textOf(logoutRequest.root, NS.protocol, 'SessionIndex')).toBe('_session-1');
    expect(logoutRequest.verifies(spCertificate())).toBe(true);

    // ...and the IdP's signed LogoutResponse brings the browser to ReturnTo, signed out.
    const logoutResponse = `<samlp:LogoutResponse xmlns:samlp="${NS.protocol}" xmlns:saml="${NS.assertion}" ID="${newId()}" Version="2.0" IssueInstant="${new Date().toISOString()}" Destination="${sp.url}/mellon/logout" InResponseTo="${logoutRequest.root.getAttribute('ID')}"><saml:Issuer>${IDP.entityId}</saml:Issuer><samlp:Status><samlp:StatusCode Value="${STATUS.success}"/></samlp:Status></samlp:LogoutResponse>`;
    const done = await browser.visit(`${sp.url}/mellon/logout?${signedRedirectQuery('SAMLResponse', logoutResponse, logoutRequest.relayState!)}`);
    expect(done.url).toBe(`${sp.url}/`);
    expect(done.html).toContain('Public page');
    expect((await sentToIdp(browser)).endpoint).toBe(IDP.sso);
  });
});
