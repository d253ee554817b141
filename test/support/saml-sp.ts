import { deflateRawSync } from 'node:zlib';
import { SAML } from '@node-saml/node-saml';
import { DOMParser } from '@xmldom/xmldom';
import type { Browser, Page } from './browser.ts';
import { adminApi, type RunningAkamon } from './akamon.ts';
import { testKeyPair, type TestKeyPair } from './saml-keys.ts';

/**
 * An independent SAML service provider in the test process: @node-saml/node-saml, registered with
 * Akamon from the metadata it generates, answering through a consumer service that is never
 * served (the test reads the form Akamon's page would post there, as the browser would send it).
 */
export interface LibrarySp {
  entityId: string;
  acsUrl: string;
  /** Its SingleLogoutService (HTTP-Redirect), never served: the test reads where Akamon sends the browser. */
  sloUrl: string;
  saml: SAML;
  keys: TestKeyPair;
  metadataXml: string;
  /** The URL that starts a sign-in (HTTP-Redirect binding), as the SP sends the browser there. */
  loginUrl(options?: { relayState?: string; forceAuthn?: boolean; passive?: boolean; mfa?: boolean }): Promise<string>;
  /** What the SP makes of the answer Akamon's page posts. */
  accept(page: Page): Promise<Awaited<ReturnType<SAML['validatePostResponseAsync']>>>;
}

/** The IdP certificate, read from Akamon's metadata as an SP administrator would. */
export async function idpCertificate(akamon: RunningAkamon): Promise<string> {
  const xml = await (await fetch(`${akamon.url}/saml/metadata`)).text();
  return /<ds:X509Certificate>([^<]+)<\/ds:X509Certificate>/.exec(xml)![1];
}

export async function librarySp(akamon: RunningAkamon, options: { name?: string; settings?: Record<string, unknown>; signRequests?: boolean } = {}): Promise<LibrarySp> {
  const id = Math.random().toString(36).slice(2, 8);
  const entityId = `https://sp-${id}.example.ac.jp/saml`;
  const acsUrl = `https://sp-${id}.example.ac.jp/saml/acs`;
  const sloUrl = `https://sp-${id}.example.ac.jp/saml/slo`;
  const keys = await testKeyPair('rsa', `sp-${id}.example.ac.jp`);
  const idpCert = await idpCertificate(akamon);
  const make = (extra: Record<string, unknown> = {}) =>
    new SAML({
      entryPoint: `${akamon.url}/saml/sso`,
      issuer: entityId,
      callbackUrl: acsUrl,
      logoutCallbackUrl: sloUrl,
      logoutUrl: `${akamon.url}/saml/slo`,
      idpCert,
      idpIssuer: `${akamon.url}/saml/metadata`,
      audience: entityId,
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: true,
      privateKey: options.signRequests === false ? undefined : keys.privatePem,
      signatureAlgorithm: 'sha256',
      identifierFormat: null,
      disableRequestedAuthnContext: true,
      validateInResponseTo: 'never' as never,
      acceptedClockSkewMs: 5000,
      ...extra,
    } as ConstructorParameters<typeof SAML>[0]);
  const saml = make();
  // node-saml publishes its logout endpoint for HTTP-POST; the tests read the HTTP-Redirect binding's URLs.
  const metadataXml = saml.generateServiceProviderMetadata(null, keys.certificatePem).replace(/(<SingleLogoutService Binding=")[^"]+/, '$1urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect');
  const created = await adminApi(akamon, 'POST', '/clients', { protocol: 'saml', name: options.name ?? `Library SP ${id}`, spMetadata: metadataXml, ...options.settings });
  if (created.status !== 201) throw new Error(`SP registration failed: ${JSON.stringify(created.body)}`);
  return {
    entityId,
    acsUrl,
    sloUrl,
    saml,
    keys,
    metadataXml,
    async loginUrl(o = {}) {
      const variant = o.mfa
        ? make({ disableRequestedAuthnContext: false, authnContext: ['https://refeds.org/profile/mfa'], racComparison: 'exact' })
        : o.passive || o.forceAuthn
          ? make({ passive: o.passive ?? false, forceAuthn: o.forceAuthn ?? false })
          : saml;
      return variant.getAuthorizeUrlAsync(o.relayState ?? '', undefined, {});
    },
    accept(page) {
      return saml.validatePostResponseAsync(postedFields(page));
    },
  };
}

/** The fields of the auto-submitting form Akamon answers an SP with, and where it posts them. */
export function postedFields(page: Page): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const match of page.html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields[match[1]] = decodeEntities(match[2]);
  return fields;
}

export function postedTo(page: Page): string | undefined {
  const action = /<form method="post" action="([^"]+)" id="saml-post">/.exec(page.html)?.[1];
  return action && decodeEntities(action);
}

function decodeEntities(text: string): string {
  return text.replaceAll('&#34;', '"').replaceAll('&#39;', "'").replaceAll('&quot;', '"').replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
}

/** The XML of a posted SAMLResponse. */
export function responseXml(page: Page): string {
  return Buffer.from(postedFields(page).SAMLResponse, 'base64').toString('utf8');
}

/**
 * What a posted SAMLResponse says, read from its XML: the StatusCode values, outermost first (core
 * 3.2.2.2: top-level, then second-level), and how many assertions it holds, plain or encrypted.
 */
export function responseStatus(page: Page): { codes: string[]; assertions: number } {
  const document = new DOMParser().parseFromString(responseXml(page), 'application/xml');
  const named = (namespace: string, localName: string) => Array.from(document.getElementsByTagNameNS(namespace, localName));
  const assertion = 'urn:oasis:names:tc:SAML:2.0:assertion';
  return {
    codes: named('urn:oasis:names:tc:SAML:2.0:protocol', 'StatusCode').map((element) => element.getAttribute('Value') ?? ''),
    assertions: named(assertion, 'Assertion').length + named(assertion, 'EncryptedAssertion').length,
  };
}

/** An AuthnRequest of the test's own making over HTTP-Redirect (unsigned), for the hostile cases. */
export function redirectWith(akamon: RunningAkamon, xml: string, relayState?: string): string {
  const query = new URLSearchParams({ SAMLRequest: deflateRawSync(Buffer.from(xml)).toString('base64'), ...(relayState === undefined ? {} : { RelayState: relayState }) });
  return `${akamon.url}/saml/sso?${query}`;
}

export function authnRequestXml(akamon: RunningAkamon, fields: { issuer: string; id?: string; acsUrl?: string; issueInstant?: Date; destination?: string; extra?: string; passive?: boolean }): string {
  const id = fields.id ?? `_${Math.random().toString(16).slice(2)}${Date.now()}`;
  return [
    `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${id}" Version="2.0"`,
    ` IssueInstant="${(fields.issueInstant ?? new Date()).toISOString().replace(/\.\d+Z$/, 'Z')}" Destination="${fields.destination ?? `${akamon.url}/saml/sso`}"`,
    fields.acsUrl ? ` AssertionConsumerServiceURL="${fields.acsUrl}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"` : '',
    fields.passive ? ' IsPassive="true"' : '',
    `><saml:Issuer>${fields.issuer}</saml:Issuer>${fields.extra ?? ''}</samlp:AuthnRequest>`,
  ].join('');
}

/** Signs in through the pages Akamon shows after an SP sent the browser: identifier, then password. */
export async function passwordSteps(browser: Browser, page: Page, account: { commonId: string; password: string }): Promise<Page> {
  let current = page;
  if (/name="identifier"/.test(current.html)) current = await browser.submit(current, /\/identifier$/, { identifier: account.commonId });
  return browser.submit(current, /\/password$/, { password: account.password });
}
