import { execFileSync } from 'node:child_process';
import { createPublicKey, verify, X509Certificate } from 'node:crypto';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { beforeAll, describe, expect, test } from '@jest/globals';
import { SAML, type SamlConfig, SamlStatusError, ValidateInResponseTo } from '@node-saml/node-saml';
import { DOMParser, type Document, type Element } from '@xmldom/xmldom';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { certificateFor, privateKeyPem, type SamlSigningKey } from '../../src/saml/certificate.ts';
import { ATTRIBUTE, ATTRNAME_FORMAT, AUTHN_CONTEXT, BINDING, NAMEID_FORMAT, NS, STATUS } from '../../src/saml/constants.ts';
import { idpMetadata } from '../../src/saml/idp-metadata.ts';
import { buildLogoutRequest, buildLogoutResponse } from '../../src/saml/logout-build.ts';
import { redirectUrl } from '../../src/saml/redirect-binding.ts';
import { buildResponse, buildStatusResponse, type ResponseInput } from '../../src/saml/response.ts';
import { SamlError } from '../../src/saml/saml-error.ts';
import { signRoot } from '../../src/saml/sign.ts';

const ISSUER = 'https://id.example.ac.jp';
const IDP = `${ISSUER}/saml/metadata`;
const SP = 'https://sp.example.ac.jp/shibboleth';
const ACS = 'https://sp.example.ac.jp/Shibboleth.sso/SAML2/POST';
const SP_SLO = 'https://sp.example.ac.jp/Shibboleth.sso/SLO/Redirect';

async function rsaKey(kid: string, createdAt = new Date('2025-04-01T12:34:56.789Z')): Promise<SamlSigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return {
    kid,
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' },
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' },
    createdAt,
  };
}

let idpKey: SamlSigningKey;
let key: { privatePem: string; certificatePem: string };
let spEncryption: { privatePem: string; certificatePem: string };

beforeAll(async () => {
  idpKey = await rsaKey('idp-key-1');
  key = { privatePem: privateKeyPem(idpKey.privateJwk), certificatePem: await certificateFor(idpKey, ISSUER) };
  const spKey = await rsaKey('sp-encryption');
  spEncryption = { privatePem: privateKeyPem(spKey.privateJwk), certificatePem: await certificateFor(spKey, 'https://sp.example.ac.jp') };
});

/** Names whose characters must survive: markup, quotes, Japanese, emoji, a CDATA end. */
const HOSTILE = `<b>O'Brien & "Sons"</b> ]]>`;
const JAPANESE = '山田 太郎';
const EMOJI = 'Ren 🦊 Tanaka';

function input(overrides: Partial<ResponseInput> = {}): ResponseInput {
  return {
    issuer: IDP,
    destination: ACS,
    inResponseTo: '_request-1',
    audience: SP,
    recipient: ACS,
    notOnOrAfterSeconds: 300,
    now: new Date(),
    nameId: { value: 'pairwise&<id>', format: NAMEID_FORMAT.persistent, nameQualifier: IDP, spNameQualifier: SP },
    sessionIndex: '_session-1',
    authnInstant: new Date(Date.now() - 5000),
    authnContextClassRef: AUTHN_CONTEXT.mfa,
    attributes: [
      { name: ATTRIBUTE.mail, friendlyName: 'mail', nameFormat: ATTRNAME_FORMAT.uri, values: ['taro@example.ac.jp'] },
      { name: ATTRIBUTE.displayName, friendlyName: 'displayName', nameFormat: ATTRNAME_FORMAT.uri, values: [HOSTILE] },
      { name: ATTRIBUTE.jaDisplayName, friendlyName: 'jaDisplayName', nameFormat: ATTRNAME_FORMAT.uri, values: [JAPANESE] },
      { name: ATTRIBUTE.givenName, friendlyName: 'givenName', nameFormat: ATTRNAME_FORMAT.uri, values: [EMOJI] },
      { name: ATTRIBUTE.eduPersonAffiliation, friendlyName: 'eduPersonAffiliation', nameFormat: ATTRNAME_FORMAT.uri, values: ['member', 'student'] },
    ],
    sign: { response: true, assertion: true },
    key,
    encryptTo: null,
    ...overrides,
  };
}

/** An independent SP (node-saml) that sent the AuthnRequest `_request-1`. */
function sp(options: Partial<SamlConfig> = {}): SAML {
  const requests = new Map<string, string>([['_request-1', new Date().toISOString()]]);
  return new SAML({
    idpCert: key.certificatePem,
    issuer: SP,
    callbackUrl: ACS,
    audience: SP,
    idpIssuer: IDP,
    wantAssertionsSigned: false,
    wantAuthnResponseSigned: false,
    validateInResponseTo: ValidateInResponseTo.always,
    cacheProvider: {
      saveAsync: async (k, value) => {
        requests.set(k, value);
        return { value, createdAt: Date.now() };
      },
      getAsync: async (k) => requests.get(k) ?? null,
      removeAsync: async (k) => {
        const value = requests.get(k ?? '') ?? null;
        requests.delete(k ?? '');
        return value;
      },
    },
    ...options,
  });
}

function post(xml: string) {
  return { SAMLResponse: Buffer.from(xml, 'utf8').toString('base64') };
}

function parse(xml: string): Document {
  return new DOMParser().parseFromString(xml, 'text/xml');
}

function children(parent: Element): Element[] {
  return Array.from(parent.childNodes).filter((n): n is Element => n.nodeType === 1);
}

function only(doc: Document, namespace: string, localName: string): Element {
  const found = Array.from(doc.getElementsByTagNameNS(namespace, localName));
  expect(found).toHaveLength(1);
  return found[0];
}

const INSTANT = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

describe('certificateFor', () => {
  test('makes a self-signed certificate of the key: CN = issuer host, serial from the kid, 20 years from creation', async () => {
    const cert = new X509Certificate(key.certificatePem);
    expect(cert.subject).toBe('CN=id.example.ac.jp');
    expect(cert.issuer).toBe('CN=id.example.ac.jp');
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.equals(createPublicKey({ key: idpKey.publicJwk as never, format: 'jwk' }))).toBe(true);
    expect(new Date(cert.validFrom).toISOString()).toBe('2025-04-01T12:34:56.000Z');
    expect(new Date(cert.validTo).toISOString()).toBe('2045-04-01T12:34:56.000Z');
    const other = new X509Certificate(await certificateFor(await rsaKey('idp-key-2'), ISSUER));
    expect(other.serialNumber).not.toBe(cert.serialNumber);
    expect(cert.serialNumber).toMatch(/^[4-7][0-9A-F]{31}$/);
  });

  test('is deterministic: another process computes a byte-identical PEM from the same key', async () => {
    const script = `
      import { certificateFor } from ${JSON.stringify(path.resolve('src/saml/certificate.ts'))};
      const key = JSON.parse(process.argv[1]);
      process.stdout.write(await certificateFor({ ...key, createdAt: new Date(key.createdAt) }, ${JSON.stringify(ISSUER)}));
    `;
    const other = execFileSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(idpKey)], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    expect(other).toBe(key.certificatePem);
    expect(await certificateFor({ ...idpKey }, ISSUER)).toBe(key.certificatePem);
  });

  test('refuses a key that is not RSA, and mismatched halves', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const ec = { kid: 'ec', privateJwk: await exportJWK(privateKey), publicJwk: await exportJWK(publicKey), createdAt: new Date() };
    await expect(certificateFor(ec, ISSUER)).rejects.toMatchObject({ name: 'SamlError', code: 'unsupported' });
    const mixed = { ...idpKey, kid: 'mixed', publicJwk: (await rsaKey('x')).publicJwk as JWK };
    await expect(certificateFor(mixed, ISSUER)).rejects.toBeInstanceOf(SamlError);
  });
});

describe('buildResponse accepted by node-saml', () => {
  test('response signed only', async () => {
    const xml = await buildResponse(input({ sign: { response: true, assertion: false } }));
    const { profile } = await sp({ wantAuthnResponseSigned: true }).validatePostResponseAsync(post(xml));
    expect(profile?.nameID).toBe('pairwise&<id>');
    expect(profile?.nameIDFormat).toBe(NAMEID_FORMAT.persistent);
    expect(profile?.sessionIndex).toBe('_session-1');
    expect(profile?.inResponseTo).toBe('_request-1');
    expect(profile?.issuer).toBe(IDP);
    // The assertion carries no signature of its own, so an SP wanting one refuses it.
    await expect(sp({ wantAssertionsSigned: true }).validatePostResponseAsync(post(xml))).rejects.toThrow(/Invalid signature/);
  });

  test('assertion signed only', async () => {
    const xml = await buildResponse(input({ sign: { response: false, assertion: true } }));
    const { profile } = await sp({ wantAssertionsSigned: true }).validatePostResponseAsync(post(xml));
    expect(profile?.nameID).toBe('pairwise&<id>');
    await expect(sp({ wantAuthnResponseSigned: true }).validatePostResponseAsync(post(xml))).rejects.toThrow(/Invalid document signature/);
  });

  test('both signed: each signature sits right after its Issuer', async () => {
    const xml = await buildResponse(input());
    const { profile } = await sp({ wantAssertionsSigned: true, wantAuthnResponseSigned: true }).validatePostResponseAsync(post(xml));
    expect(profile?.attributes).toBeDefined();
    const doc = parse(xml);
    const response = doc.documentElement!;
    expect(children(response).map((e) => e.localName)).toEqual(['Issuer', 'Signature', 'Status', 'Assertion']);
    expect(children(only(doc, NS.assertion, 'Assertion')).map((e) => e.localName)).toEqual(['Issuer', 'Signature', 'Subject', 'Conditions', 'AuthnStatement', 'AttributeStatement']);
    for (const signature of Array.from(doc.getElementsByTagNameNS(NS.dsig, 'Signature'))) {
      expect(signature.getElementsByTagNameNS(NS.dsig, 'SignatureMethod')[0].getAttribute('Algorithm')).toBe('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
      expect(signature.getElementsByTagNameNS(NS.dsig, 'DigestMethod')[0].getAttribute('Algorithm')).toBe('http://www.w3.org/2001/04/xmlenc#sha256');
      const reference = signature.getElementsByTagNameNS(NS.dsig, 'Reference')[0].getAttribute('URI');
      expect(reference).toBe(`#${(signature.parentNode as Element).getAttribute('ID')}`);
      expect(signature.getElementsByTagNameNS(NS.dsig, 'X509Certificate')[0].textContent).toBe(key.certificatePem.replace(/-----[A-Z ]+-----|\s/g, ''));
    }
  });

  test('encrypted assertion (signed, then encrypted, inside a signed response)', async () => {
    const xml = await buildResponse(input({ encryptTo: spEncryption.certificatePem }));
    expect(xml).toContain('EncryptedAssertion');
    expect(xml).toContain('http://www.w3.org/2009/xmlenc11#aes256-gcm');
    expect(xml).toContain('http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p');
    const doc = parse(xml);
    expect(doc.getElementsByTagNameNS(NS.assertion, 'Assertion')).toHaveLength(0);
    expect(children(doc.documentElement!).map((e) => e.localName)).toEqual(['Issuer', 'Signature', 'Status', 'EncryptedAssertion']);
    for (const secret of ['pairwise', 'taro@example.ac.jp', 'Brien', '山田']) expect(xml).not.toContain(secret);

    const { profile } = await sp({ wantAssertionsSigned: true, wantAuthnResponseSigned: true, decryptionPvk: spEncryption.privatePem }).validatePostResponseAsync(post(xml));
    expect(profile?.nameID).toBe('pairwise&<id>');
    expect(profile?.attributes).toMatchObject({ [ATTRIBUTE.jaDisplayName]: JAPANESE });
    await expect(sp({ wantAssertionsSigned: true }).validatePostResponseAsync(post(xml))).rejects.toThrow(/decryption key/);
  });

  test('encrypted assertion signed only inside (unsigned response)', async () => {
    const xml = await buildResponse(input({ sign: { response: false, assertion: true }, encryptTo: spEncryption.certificatePem }));
    const { profile } = await sp({ wantAssertionsSigned: true, decryptionPvk: spEncryption.privatePem }).validatePostResponseAsync(post(xml));
    expect(profile?.sessionIndex).toBe('_session-1');
  });

  test.each([
    ['response', { response: true, assertion: false }, { wantAuthnResponseSigned: true }],
    ['assertion', { response: false, assertion: true }, { wantAssertionsSigned: true }],
    ['both', { response: true, assertion: true }, { wantAssertionsSigned: true, wantAuthnResponseSigned: true }],
  ])('refused when one byte of a signed part changes (%s signed)', async (_, sign, options) => {
    const xml = await buildResponse(input({ sign }));
    await sp(options).validatePostResponseAsync(post(xml));
    for (const [from, to] of [
      ['taro@example.ac.jp', 'taro@example.ac.jq'],
      [`>${SP}<`, `>${SP.replace('sp.', 'sq.')}<`],
      ['pairwise&amp;', 'pairwisf&amp;'],
    ]) {
      expect(xml).toContain(from);
      await expect(sp({ ...options, audience: false }).validatePostResponseAsync(post(xml.replace(from, to)))).rejects.toThrow(/signature/i);
    }
  });

  test('refused by an SP of another audience, and once expired', async () => {
    await expect(sp({ audience: 'https://other.example.org/sp' }).validatePostResponseAsync(post(await buildResponse(input())))).rejects.toThrow(/audience mismatch/);
    const old = await buildResponse(input({ now: new Date(Date.now() - 10 * 60_000) }));
    // node-saml checks the subject confirmation's NotOnOrAfter first, the Conditions when it does not track requests.
    await expect(sp().validatePostResponseAsync(post(old))).rejects.toThrow('No valid subject confirmation found among those available in the SAML assertion');
    await expect(sp({ validateInResponseTo: ValidateInResponseTo.never }).validatePostResponseAsync(post(old))).rejects.toThrow('SAML assertion expired: clocks skewed too much');
  });

  test('names with markup, quotes, Japanese and emoji round-trip, multi-valued attributes stay lists', async () => {
    const xml = await buildResponse(input());
    expect(xml).not.toContain('<b>');
    const { profile } = await sp({ wantAssertionsSigned: true }).validatePostResponseAsync(post(xml));
    const attributes = profile?.attributes as Record<string, unknown>;
    expect(attributes[ATTRIBUTE.displayName]).toBe(HOSTILE);
    expect(attributes[ATTRIBUTE.jaDisplayName]).toBe(JAPANESE);
    expect(attributes[ATTRIBUTE.givenName]).toBe(EMOJI);
    expect(attributes[ATTRIBUTE.eduPersonAffiliation]).toEqual(['member', 'student']);
    const attribute = Array.from(parse(xml).getElementsByTagNameNS(NS.assertion, 'Attribute')).find((a) => a.getAttribute('Name') === ATTRIBUTE.displayName)!;
    expect(attribute.getAttribute('NameFormat')).toBe(ATTRNAME_FORMAT.uri);
    expect(attribute.getAttribute('FriendlyName')).toBe('displayName');
    expect(attribute.getElementsByTagNameNS(NS.assertion, 'AttributeValue')[0].getAttributeNS(NS.xsi, 'type')).toBe('xs:string');
  });

  test('a value XML cannot carry is refused, not sent broken', async () => {
    for (const bad of ['a\u0001b', 'line\rfeed', 'lone \uD800 surrogate']) {
      await expect(buildResponse(input({ attributes: [{ name: ATTRIBUTE.sn, nameFormat: ATTRNAME_FORMAT.uri, values: [bad] }] }))).rejects.toMatchObject({ code: 'unsupported' });
    }
  });
});

describe('buildResponse content', () => {
  const now = new Date('2026-01-15T03:04:05.678Z');

  test('IDs, instants, conditions, subject confirmation and authentication statement', async () => {
    const doc = parse(await buildResponse(input({ now, authnInstant: new Date('2026-01-15T03:00:00.500Z'), notOnOrAfterSeconds: 300 })));
    const response = doc.documentElement!;
    const assertion = only(doc, NS.assertion, 'Assertion');
    for (const element of [response, assertion]) {
      expect(element.getAttribute('ID')).toMatch(/^_[0-9a-f]{40}$/);
      expect(element.getAttribute('Version')).toBe('2.0');
      expect(element.getAttribute('IssueInstant')).toBe('2026-01-15T03:04:05Z');
    }
    expect(response.getAttribute('ID')).not.toBe(assertion.getAttribute('ID'));
    expect(response.getAttribute('Destination')).toBe(ACS);
    expect(response.getAttribute('InResponseTo')).toBe('_request-1');
    expect(only(doc, NS.protocol, 'StatusCode').getAttribute('Value')).toBe(STATUS.success);

    const conditions = only(doc, NS.assertion, 'Conditions');
    expect(conditions.getAttribute('NotBefore')).toBe('2026-01-15T03:03:05Z');
    expect(conditions.getAttribute('NotOnOrAfter')).toBe('2026-01-15T03:09:05Z');
    expect(only(doc, NS.assertion, 'Audience').textContent).toBe(SP);

    expect(only(doc, NS.assertion, 'SubjectConfirmation').getAttribute('Method')).toBe('urn:oasis:names:tc:SAML:2.0:cm:bearer');
    const data = only(doc, NS.assertion, 'SubjectConfirmationData');
    expect(data.getAttribute('Recipient')).toBe(ACS);
    expect(data.getAttribute('NotOnOrAfter')).toBe('2026-01-15T03:09:05Z');
    expect(data.getAttribute('InResponseTo')).toBe('_request-1');

    const nameId = only(doc, NS.assertion, 'NameID');
    expect(nameId.textContent).toBe('pairwise&<id>');
    expect(nameId.getAttribute('NameQualifier')).toBe(IDP);
    expect(nameId.getAttribute('SPNameQualifier')).toBe(SP);

    const authn = only(doc, NS.assertion, 'AuthnStatement');
    expect(authn.getAttribute('AuthnInstant')).toBe('2026-01-15T03:00:00Z');
    expect(authn.getAttribute('SessionIndex')).toBe('_session-1');
    expect(only(doc, NS.assertion, 'AuthnContextClassRef').textContent).toBe(AUTHN_CONTEXT.mfa);
  });

  test('IdP-initiated: no InResponseTo anywhere, and node-saml accepts it unsolicited', async () => {
    const xml = await buildResponse(input({ inResponseTo: null, attributes: [], nameId: { value: 'x@example.ac.jp', format: NAMEID_FORMAT.emailAddress } }));
    expect(xml).not.toContain('InResponseTo');
    const doc = parse(xml);
    expect(doc.getElementsByTagNameNS(NS.assertion, 'AttributeStatement')).toHaveLength(0);
    const nameId = only(doc, NS.assertion, 'NameID');
    expect(nameId.hasAttribute('NameQualifier')).toBe(false);
    expect(nameId.hasAttribute('SPNameQualifier')).toBe(false);
    const { profile } = await sp({ validateInResponseTo: ValidateInResponseTo.ifPresent, wantAssertionsSigned: true }).validatePostResponseAsync(post(xml));
    expect(profile?.nameID).toBe('x@example.ac.jp');
    expect(profile?.attributes).toBeUndefined();
  });

  test('attributes without values are left out', async () => {
    const doc = parse(
      await buildResponse(
        input({
          attributes: [
            { name: ATTRIBUTE.eduPersonEntitlement, nameFormat: ATTRNAME_FORMAT.uri, values: [] },
            { name: ATTRIBUTE.sn, nameFormat: ATTRNAME_FORMAT.uri, values: ['Yamada'] },
          ],
        }),
      ),
    );
    expect(Array.from(doc.getElementsByTagNameNS(NS.assertion, 'Attribute')).map((a) => a.getAttribute('Name'))).toEqual([ATTRIBUTE.sn]);
    const none = parse(await buildResponse(input({ attributes: [{ name: ATTRIBUTE.sn, nameFormat: ATTRNAME_FORMAT.uri, values: [] }] })));
    expect(none.getElementsByTagNameNS(NS.assertion, 'AttributeStatement')).toHaveLength(0);
  });

  test('an unsigned response, or a non-positive lifetime, is refused', async () => {
    await expect(buildResponse(input({ sign: { response: false, assertion: false } }))).rejects.toMatchObject({ code: 'unsupported' });
    await expect(buildResponse(input({ notOnOrAfterSeconds: 0 }))).rejects.toMatchObject({ code: 'unsupported' });
  });

  test('an encryption certificate that is not one is refused', async () => {
    await expect(buildResponse(input({ encryptTo: 'not a certificate' }))).rejects.toMatchObject({ code: 'malformed' });
  });
});

describe('buildStatusResponse', () => {
  test('Responder/RequestDenied is a signed failure node-saml reports with that status', async () => {
    const xml = buildStatusResponse({ issuer: IDP, destination: ACS, inResponseTo: '_request-1', status: { top: STATUS.responder, second: STATUS.requestDenied }, now: new Date(), key });
    const doc = parse(xml);
    expect(doc.getElementsByTagNameNS(NS.assertion, 'Assertion')).toHaveLength(0);
    expect(children(doc.documentElement!).map((e) => e.localName)).toEqual(['Issuer', 'Signature', 'Status']);
    const error = await sp({ wantAuthnResponseSigned: true })
      .validatePostResponseAsync(post(xml))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SamlStatusError);
    expect((error as Error).message).toBe('SAML provider returned Responder error: RequestDenied');
    expect((error as SamlStatusError).xmlStatus).toContain(STATUS.requestDenied);
  });

  test('the status message is escaped and carried', async () => {
    const xml = buildStatusResponse({
      issuer: IDP,
      destination: ACS,
      inResponseTo: null,
      status: { top: STATUS.responder, second: STATUS.requestDenied, message: `アクセス拒否 <${HOSTILE}>` },
      now: new Date(),
      key,
    });
    const error = await sp({ validateInResponseTo: ValidateInResponseTo.ifPresent })
      .validatePostResponseAsync(post(xml))
      .catch((e: unknown) => e);
    expect((error as Error).message).toBe(`SAML provider returned Responder error: アクセス拒否 <${HOSTILE}>`);
  });

  test('Responder/NoPassive: node-saml reads it as "not signed in" only when the signature holds', async () => {
    const xml = buildStatusResponse({ issuer: IDP, destination: ACS, inResponseTo: '_request-1', status: { top: STATUS.responder, second: STATUS.noPassive }, now: new Date(), key });
    expect(await sp().validatePostResponseAsync(post(xml))).toEqual({ profile: null, loggedOut: false });
    await expect(sp().validatePostResponseAsync(post(xml.replace(`Destination="${ACS}"`, `Destination="${ACS}x"`)))).rejects.toThrow('Invalid signature: NoPassive');
  });

  test('a success is not a status response', () => {
    expect(() => buildStatusResponse({ issuer: IDP, destination: ACS, inResponseTo: null, status: { top: STATUS.success }, now: new Date(), key })).toThrow(SamlError);
  });
});

describe('logout messages', () => {
  const nameId = { value: 'pairwise-id-1', format: NAMEID_FORMAT.persistent, nameQualifier: IDP, spNameQualifier: SP };

  function query(url: string): { raw: string; params: URLSearchParams } {
    const raw = url.slice(url.indexOf('?') + 1);
    return { raw, params: new URLSearchParams(raw) };
  }

  /** Verifies a redirect-binding signature as bindings 3.4.4.1 says: over the raw octets as sent. */
  function verifies(raw: string, param: string): boolean {
    const pairs = raw.split('&');
    const pick = (name: string) => pairs.find((p) => p.startsWith(`${name}=`));
    const signed = [pick(param), pick('RelayState'), pick('SigAlg')].filter(Boolean).join('&');
    const signature = Buffer.from(decodeURIComponent(pick('Signature')!.slice('Signature='.length)), 'base64');
    return verify('sha256', Buffer.from(signed), key.certificatePem, signature);
  }

  test('LogoutRequest: content, redirect URL signed over the raw query, read by node-saml', async () => {
    const now = new Date();
    const { id, xml } = buildLogoutRequest({ issuer: IDP, destination: SP_SLO, nameId, sessionIndex: '_session-1', now, notOnOrAfterSeconds: 120 });
    const doc = parse(xml);
    const root = doc.documentElement!;
    expect(root.localName).toBe('LogoutRequest');
    expect(root.namespaceURI).toBe(NS.protocol);
    expect(root.getAttribute('ID')).toBe(id);
    expect(id).toMatch(/^_[0-9a-f]{40}$/);
    expect(root.getAttribute('Destination')).toBe(SP_SLO);
    expect(root.getAttribute('IssueInstant')).toMatch(INSTANT);
    expect(Date.parse(root.getAttribute('NotOnOrAfter')!) - Date.parse(root.getAttribute('IssueInstant')!)).toBe(120_000);
    expect(children(root).map((e) => e.localName)).toEqual(['Issuer', 'NameID', 'SessionIndex']);
    expect(only(doc, NS.assertion, 'NameID').getAttribute('SPNameQualifier')).toBe(SP);

    const relayState = 'back/to?a=1&b=日本';
    const url = redirectUrl(`${SP_SLO}?op=slo`, 'SAMLRequest', xml, relayState, key);
    expect(url.startsWith(`${SP_SLO}?op=slo&SAMLRequest=`)).toBe(true);
    const { raw, params } = query(url);
    expect(params.get('SigAlg')).toBe('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
    expect(params.get('RelayState')).toBe(relayState);
    expect(inflateRawSync(Buffer.from(params.get('SAMLRequest')!, 'base64')).toString('utf8')).toBe(xml);
    expect(verifies(raw, 'SAMLRequest')).toBe(true);
    expect(verifies(raw.replace('RelayState=back', 'RelayState=bacK'), 'SAMLRequest')).toBe(false);

    const container = Object.fromEntries(params) as Record<string, string>;
    const result = await sp().validateRedirectAsync(container, raw);
    expect(result.loggedOut).toBe(true);
    expect(result.profile?.nameID).toBe('pairwise-id-1');
    expect(result.profile?.sessionIndex).toBe('_session-1');
    expect(result.profile?.issuer).toBe(IDP);
    await expect(sp().validateRedirectAsync({ ...container, RelayState: 'other' }, raw.replace(/RelayState=[^&]*/, 'RelayState=other'))).rejects.toThrow('Invalid query signature');
  });

  test('LogoutResponse: redirect without RelayState, verified by node:crypto and node-saml', async () => {
    const xml = buildLogoutResponse({ issuer: IDP, destination: SP_SLO, inResponseTo: '_sp-logout-1', statusTop: STATUS.success, now: new Date() });
    const root = parse(xml).documentElement!;
    expect(root.localName).toBe('LogoutResponse');
    expect(root.getAttribute('InResponseTo')).toBe('_sp-logout-1');
    expect(children(root).map((e) => e.localName)).toEqual(['Issuer', 'Status']);

    const { raw, params } = query(redirectUrl(SP_SLO, 'SAMLResponse', xml, null, key));
    expect(params.has('RelayState')).toBe(false);
    expect(verifies(raw, 'SAMLResponse')).toBe(true);
    const result = await sp({ validateInResponseTo: ValidateInResponseTo.never }).validateRedirectAsync(Object.fromEntries(params), raw);
    expect(result).toEqual({ profile: null, loggedOut: true });
  });

  test('over HTTP-POST, signRoot gives the embedded signature node-saml verifies', async () => {
    const { xml } = buildLogoutRequest({ issuer: IDP, destination: SP_SLO, nameId, sessionIndex: '_session-1', now: new Date(), notOnOrAfterSeconds: 120 });
    const signed = signRoot(xml, key);
    expect(children(parse(signed).documentElement!).map((e) => e.localName)).toEqual(['Issuer', 'Signature', 'NameID', 'SessionIndex']);
    const result = await sp().validatePostRequestAsync({ SAMLRequest: Buffer.from(signed).toString('base64') });
    expect(result.profile?.nameID).toBe('pairwise-id-1');
    await expect(sp().validatePostRequestAsync({ SAMLRequest: Buffer.from(signed.replace('pairwise-id-1', 'pairwise-id-2')).toString('base64') })).rejects.toThrow(/signature/i);
  });
});

describe('idpMetadata', () => {
  test('one signing KeyDescriptor per certificate in order, both bindings for SSO and SLO, the NameID formats', async () => {
    const next = await certificateFor(await rsaKey('idp-key-next'), ISSUER);
    const xml = idpMetadata({
      entityId: IDP,
      ssoUrl: `${ISSUER}/saml/sso`,
      sloUrl: `${ISSUER}/saml/slo`,
      certificates: [key.certificatePem, next],
      nameIdFormats: [NAMEID_FORMAT.persistent, NAMEID_FORMAT.transient],
      scope: 'utac.example.ac.jp',
    });
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<md:EntityDescriptor')).toBe(true);
    const doc = parse(xml);
    const root = doc.documentElement!;
    expect(root.namespaceURI).toBe(NS.metadata);
    expect(root.getAttribute('entityID')).toBe(IDP);
    const idp = only(doc, NS.metadata, 'IDPSSODescriptor');
    expect(idp.getAttribute('WantAuthnRequestsSigned')).toBe('false');
    expect(idp.getAttribute('protocolSupportEnumeration')).toBe(NS.protocol);
    expect(children(idp).map((e) => e.localName)).toEqual([
      'Extensions',
      'KeyDescriptor',
      'KeyDescriptor',
      'SingleLogoutService',
      'SingleLogoutService',
      'NameIDFormat',
      'NameIDFormat',
      'SingleSignOnService',
      'SingleSignOnService',
    ]);
    // The scope of the scoped attributes, as Shibboleth SPs read it (shibmd:Scope).
    const scope = idp.getElementsByTagNameNS('urn:mace:shibboleth:metadata:1.0', 'Scope')[0];
    expect([scope.textContent, scope.getAttribute('regexp')]).toEqual(['utac.example.ac.jp', 'false']);
    const keys = Array.from(idp.getElementsByTagNameNS(NS.metadata, 'KeyDescriptor'));
    expect(keys.map((k) => k.getAttribute('use'))).toEqual(['signing', 'signing']);
    const bodies = keys.map((k) => k.getElementsByTagNameNS(NS.dsig, 'X509Certificate')[0].textContent!);
    expect(bodies).toEqual([key.certificatePem, next].map((pem) => pem.replace(/-----[A-Z ]+-----|\s/g, '')));
    expect(new X509Certificate(Buffer.from(bodies[1], 'base64')).subject).toBe('CN=id.example.ac.jp');
    const endpoints = (name: string) => Array.from(idp.getElementsByTagNameNS(NS.metadata, name)).map((e) => [e.getAttribute('Binding'), e.getAttribute('Location')]);
    expect(endpoints('SingleSignOnService')).toEqual([
      [BINDING.redirect, `${ISSUER}/saml/sso`],
      [BINDING.post, `${ISSUER}/saml/sso`],
    ]);
    expect(endpoints('SingleLogoutService')).toEqual([
      [BINDING.redirect, `${ISSUER}/saml/slo`],
      [BINDING.post, `${ISSUER}/saml/slo`],
    ]);
    expect(Array.from(idp.getElementsByTagNameNS(NS.metadata, 'NameIDFormat')).map((e) => e.textContent)).toEqual([NAMEID_FORMAT.persistent, NAMEID_FORMAT.transient]);
  });

  test('refuses to publish no key', () => {
    expect(() => idpMetadata({ entityId: IDP, ssoUrl: 'x', sloUrl: 'y', certificates: [], nameIdFormats: [], scope: 'x' })).toThrow(SamlError);
  });
});
