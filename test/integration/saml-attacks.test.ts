import { randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { SAML } from '@node-saml/node-saml';
import { adminApi, startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser, type Page } from '../support/browser.ts';
import { signIn, tokenRequest } from '../support/flows.ts';
import { testKeyPair, type TestKeyPair } from '../support/saml-keys.ts';
import { authnRequestXml, librarySp, postedFields, postedTo, redirectWith, responseStatus, responseXml, type LibrarySp } from '../support/saml-sp.ts';
import {
  base64,
  editXml,
  logRecordsSince,
  naivelyVerifies,
  postBinding,
  refusalProblems,
  signatureOf,
  signedRedirectUrl,
  signInUntilContinue,
  signXml,
  untilContinue,
  wrapSignature,
} from '../support/saml-attacks.ts';

// Issue 17 point 8 (hostile input), tried over real HTTP against /saml/sso, /saml/init and
// /saml/continue: each hostile message is refused on Akamon's own 400 page in the browser's
// language, logged as "SAML message refused", and never leads into the authorization (no redirect,
// no stored request) nor to an assertion. Beside each refusal a control shows the same message,
// untouched, accepted: what is refused is the attack, not the message's shape.

let akamon: RunningAkamon;
/** An SP registered as signing its requests (--signed-requests, and AuthnRequestsSigned in its metadata). */
let signer: LibrarySp;
/** An SP that does not sign: anyone can write its requests, so what counts is what Akamon does with them. */
let plain: LibrarySp;
/** A key and self-signed certificate of the attacker's own. */
let attacker: TestKeyPair;

beforeAll(async () => {
  akamon = await startAkamon();
  signer = await librarySp(akamon, { name: 'Signing SP', settings: { signedRequests: true } });
  plain = await librarySp(akamon, { name: 'Plain SP', signRequests: false });
  attacker = await testKeyPair('rsa', 'attacker.example');
});
afterAll(() => akamon.close());

/** A fresh AuthnRequest ID (an xs:ID): each case stores, or must not store, its own. */
const newId = () => `_atk${randomBytes(8).toString('hex')}`;

const signerRequest = (id: string, fields: { acsUrl?: string; extra?: string } = {}) => authnRequestXml(akamon, { issuer: signer.entityId, id, ...fields });
const plainRequest = (id: string, fields: Omit<Parameters<typeof authnRequestXml>[1], 'issuer' | 'id'> = {}) => authnRequestXml(akamon, { issuer: plain.entityId, id, ...fields });

const post = (browser: Browser, xml: string) => postBinding(browser, akamon, { SAMLRequest: base64(xml) });

async function pageOf(response: Response): Promise<Page> {
  return { status: response.status, url: response.url, html: await response.text(), headers: response.headers };
}

/** The requests stored for sign-in under these AuthnRequest IDs: a refused message stores none. */
async function storedRequests(...ids: string[]): Promise<number> {
  return (await akamon.deps.database.db.selectFrom('saml_request').select('id').where('request_id', 'in', ids).execute()).length;
}

/**
 * Sends what `send` sends, from a fresh browser asking for `language`, and checks the refusal: a 400
 * page in that language with no way onwards, exactly one "SAML message refused" log record whose
 * reason matches `reason`, and no error logged. Returns the page.
 */
async function expectRefused(language: 'en' | 'ja', send: (browser: Browser) => Promise<Page | Response>, reason: RegExp): Promise<Page> {
  const from = akamon.logs.length;
  const browser = new Browser(akamon.url);
  browser.acceptLanguage = language;
  const sent = await send(browser);
  const page = sent instanceof Response ? await pageOf(sent) : sent;
  expect(refusalProblems(page, language)).toEqual([]);
  const records = logRecordsSince(akamon, from);
  expect(records.filter((record) => record.msg === 'SAML message refused').map((record) => String(record.reason))).toEqual([expect.stringMatching(reason)]);
  expect(records.filter((record) => Number(record.level) >= 50)).toEqual([]);
  return page;
}

/** A message Akamon takes: the browser goes on into the authorization, and the request is stored. */
async function expectAccepted(response: Response, id: string): Promise<void> {
  expect(response.status).toBe(302);
  expect(response.headers.get('location')).toMatch(new RegExp(`^${akamon.url}/auth\\?`));
  expect(await storedRequests(id)).toBe(1);
}

/** Whether a page answers an SP with an assertion (what no refusal may do). */
const carriesAssertion = (page: Page) => postedTo(page) !== undefined && /<(\w+:)?(Encrypted)?Assertion[\s>]/.test(responseXml(page));

describe('signature wrapping on HTTP-POST requests of an SP registered as signing them', () => {
  test('control: the request as the SP signed it goes on into the authorization', async () => {
    const id = newId();
    const signed = signXml(signerRequest(id), signer.keys);
    expect(naivelyVerifies(signed, signer.keys.certificatePem)).toBe(true);
    await expectAccepted(await post(new Browser(akamon.url), signed), id);
  });

  test('changed after signing (its consumer service swapped for the attacker’s): refused', async () => {
    const id = newId();
    const signed = signXml(signerRequest(id, { acsUrl: signer.acsUrl }), signer.keys);
    const tampered = signed.replace(signer.acsUrl, 'https://evil.example/acs');
    expect(naivelyVerifies(tampered, signer.keys.certificatePem)).toBe(false);
    await expectRefused('en', (b) => post(b, tampered), /does not verify/);
    expect(await storedRequests(id)).toBe(0);
  });

  test('a second AuthnRequest: the attacker’s as the root, the signed original hidden in its Extensions (XSW): refused', async () => {
    const id = newId();
    const evilId = newId();
    const wrapped = wrapSignature(signXml(signerRequest(id), signer.keys), signerRequest(evilId, { acsUrl: 'https://evil.example/acs' }));
    // A verifier that only asks whether some signature verifies is fooled by this message.
    expect(naivelyVerifies(wrapped, signer.keys.certificatePem)).toBe(true);
    await expectRefused('ja', (b) => post(b, wrapped), /more than one AuthnRequest/);
    expect(await storedRequests(id, evilId)).toBe(0);
  });

  test('the signature moved off the root (into Extensions, where it still verifies): refused', async () => {
    const id = newId();
    // Signed with an empty Extensions, so that the moved signature, enveloped, leaves the digest as it was.
    const signed = signXml(signerRequest(id, { extra: '<samlp:Extensions/>' }), signer.keys);
    const moved = editXml(signed, (root) => {
      const signature = signatureOf(root);
      root.removeChild(signature);
      Array.from(root.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:protocol', 'Extensions'))[0].appendChild(signature);
    });
    expect(naivelyVerifies(moved, signer.keys.certificatePem)).toBe(true);
    await expectRefused('en', (b) => post(b, moved), /not a child of the message/);
    expect(await storedRequests(id)).toBe(0);
  });

  test('a genuine signature of the SP whose reference is another element’s ID, not the request’s: refused', async () => {
    const id = newId();
    // The SP's own key signs only a blob inside Extensions (as an attacker holding any message
    // of the SP with a signed part would reuse it): the request around it is unsigned.
    const xml = signerRequest(id, { acsUrl: 'https://evil.example/acs', extra: '<samlp:Extensions><x:Blob xmlns:x="urn:example:x" ID="_blob">anything</x:Blob></samlp:Extensions>' });
    const signed = signXml(xml, signer.keys, { reference: "//*[@ID='_blob']" });
    expect(signed).toContain('URI="#_blob"');
    expect(naivelyVerifies(signed, signer.keys.certificatePem)).toBe(true);
    await expectRefused('ja', (b) => post(b, signed), /references #_blob, not the message/);
    expect(await storedRequests(id)).toBe(0);
  });

  test('duplicate IDs: another element with the request’s ID, under a genuine signature: refused', async () => {
    const id = newId();
    const xml = signerRequest(id, { extra: `<samlp:Extensions><x:Blob xmlns:x="urn:example:x" ID="${id}">decoy</x:Blob></samlp:Extensions>` });
    const signed = signXml(xml, signer.keys);
    expect(signed).toContain(`URI="#${id}"`);
    await expectRefused('en', (b) => post(b, signed), new RegExp(`the ID ${id} appears twice`));
    expect(await storedRequests(id)).toBe(0);
  });

  test('the signature taken away: refused as unsigned', async () => {
    const id = newId();
    const stripped = editXml(signXml(signerRequest(id), signer.keys), (root) => root.removeChild(signatureOf(root)));
    await expectRefused('en', (b) => post(b, stripped), /no signature/);
    expect(await storedRequests(id)).toBe(0);
  });

  test('signed with the attacker’s key, the attacker’s certificate (or the SP’s) in KeyInfo: refused', async () => {
    const own = newId();
    const withOwnCertificate = signXml(signerRequest(own), attacker, { keyInfoCertificate: attacker.certificatePem });
    expect(withOwnCertificate).toContain('<ds:X509Certificate>');
    // Against the certificate it carries, the signature is fine: only the registered one tells.
    expect(naivelyVerifies(withOwnCertificate, attacker.certificatePem)).toBe(true);
    await expectRefused('ja', (b) => post(b, withOwnCertificate), /does not verify with any registered certificate/);
    const claimed = newId();
    const claimingSp = signXml(signerRequest(claimed), attacker, { keyInfoCertificate: signer.keys.certificatePem });
    await expectRefused('en', (b) => post(b, claimingSp), /does not verify with any registered certificate/);
    expect(await storedRequests(own, claimed)).toBe(0);
  });

  test('a comment inside the signed Issuer changes nothing (canonical form drops it); text added next to it breaks the signature', async () => {
    const commented = newId();
    const signed = signXml(signerRequest(commented), signer.keys);
    const [head, tail] = [signer.entityId.slice(0, 12), signer.entityId.slice(12)];
    const withComment = signed.replace(`>${signer.entityId}<`, `>${head}<!--x-->${tail}<`);
    expect(withComment).not.toBe(signed);
    await expectAccepted(await post(new Browser(akamon.url), withComment), commented);
    const extended = newId();
    const withText = signXml(signerRequest(extended), signer.keys).replace(`>${signer.entityId}<`, `>${signer.entityId}<!---->.evil.example<`);
    await expectRefused('en', (b) => post(b, withText), /unknown service provider .*\.evil\.example/);
    expect(await storedRequests(extended)).toBe(0);
  });
});

describe('signed HTTP-Redirect requests', () => {
  test('control: RSA-SHA256 over SAMLRequest, RelayState and SigAlg goes on into the authorization', async () => {
    const id = newId();
    await expectAccepted(await new Browser(akamon.url).request(signedRedirectUrl(akamon, signerRequest(id), signer.keys, { relayState: 'to/page?x=1' })), id);
  });

  test('signed with RSA-SHA1 (by the registered key): refused', async () => {
    const id = newId();
    await expectRefused('en', (b) => b.visit(signedRedirectUrl(akamon, signerRequest(id), signer.keys, { sigAlg: 'sha1' })), /SHA-1 is refused/);
    expect(await storedRequests(id)).toBe(0);
  });

  test('the RelayState changed, added or taken away after signing: refused', async () => {
    const evil = 'RelayState=https%3A%2F%2Fevil.example%2F';
    const cases: Array<[string, string | undefined, (query: string) => string]> = [
      ['changed', 'to/page', (q) => q.replace('RelayState=to%2Fpage', evil)],
      ['added', undefined, (q) => q.replace('&SigAlg=', `&${evil}&SigAlg=`)],
      ['taken away', 'to/page', (q) => q.replace('&RelayState=to%2Fpage', '')],
    ];
    const ids: string[] = [];
    for (const [i, [, relayState, tamper]] of cases.entries()) {
      const id = newId();
      ids.push(id);
      const xml = signerRequest(id);
      const url = signedRedirectUrl(akamon, xml, signer.keys, { relayState, tamper });
      expect(url).not.toBe(signedRedirectUrl(akamon, xml, signer.keys, { relayState }));
      await expectRefused(i % 2 ? 'ja' : 'en', (b) => b.visit(url), /query signature does not verify/);
    }
    expect(await storedRequests(...ids)).toBe(0);
  });

  test('signed with the attacker’s key; unsigned: refused', async () => {
    const ids = [newId(), newId()];
    await expectRefused('en', (b) => b.visit(signedRedirectUrl(akamon, signerRequest(ids[0]), attacker)), /query signature does not verify/);
    await expectRefused('ja', (b) => b.visit(redirectWith(akamon, signerRequest(ids[1]))), /no signature/);
    expect(await storedRequests(...ids)).toBe(0);
  });
});

describe('hostile requests of any SP', () => {
  test('a comment inside the Issuer: split the registered name and it is that SP; append to it and it is nobody', async () => {
    const split = newId();
    const name = plain.entityId;
    await expectAccepted(await new Browser(akamon.url).request(redirectWith(akamon, plainRequest(split).replace(`>${name}<`, `>${name.slice(0, 10)}<!---->${name.slice(10)}<`))), split);
    const appended = newId();
    // `https://registered<!---->.evil`: a reader taking the first text node would see the registered SP.
    const evil = plainRequest(appended).replace(`>${name}<`, `>${name}<!---->.evil.example<`);
    await expectRefused('ja', (b) => b.visit(redirectWith(akamon, evil)), new RegExp(`unknown service provider ${name.replaceAll('.', '\\.')}\\.evil\\.example`));
    expect(await storedRequests(appended)).toBe(0);
  });

  test('XXE and billion laughs over HTTP-POST: refused before any entity is read', async () => {
    const xxe = newId();
    const laughs = newId();
    const entity = newId();
    const dtd = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${plainRequest(xxe, { extra: '<samlp:Extensions>&xxe;</samlp:Extensions>' })}`;
    const lol = Array.from({ length: 9 }, (_, i) => `<!ENTITY l${i + 1} "${`&l${i};`.repeat(10)}">`).join('');
    const bomb = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY l0 "lol">${lol}]>${plainRequest(laughs, { extra: '<samlp:Extensions>&l9;</samlp:Extensions>' })}`;
    // No DOCTYPE, an entity reference all the same: an undeclared entity is not well-formed.
    const undeclared = plainRequest(entity, { extra: '<samlp:Extensions>&xxe;</samlp:Extensions>' });
    await expectRefused('en', (b) => post(b, dtd), /DOCTYPE/);
    await expectRefused('ja', (b) => post(b, bomb), /DOCTYPE/);
    await expectRefused('en', (b) => post(b, undeclared), /XML (error|fatalError|warning)/i);
    expect(await storedRequests(xxe, laughs, entity)).toBe(0);
  });

  test('a huge POST body is refused before it is read as SAML (413 page, never a 500)', async () => {
    const from = akamon.logs.length;
    const browser = new Browser(akamon.url);
    const id = newId();
    const padded = plainRequest(id, { extra: `<samlp:Extensions><x:P xmlns:x="urn:x">${'A'.repeat(300_000)}</x:P></samlp:Extensions>` });
    const page = await pageOf(await post(browser, padded));
    expect(page.status).toBe(413);
    expect(page.html).toMatch(/too large|大きすぎ/);
    expect(postedTo(page)).toBeUndefined();
    expect(logRecordsSince(akamon, from).filter((record) => Number(record.level) >= 50)).toEqual([]);
    expect(await storedRequests(id)).toBe(0);
  });

  test('malformed DEFLATE, and a deflate bomb, over HTTP-Redirect: refused', async () => {
    const garbage = Buffer.from('this is not raw deflate data, only bytes').toString('base64');
    await expectRefused('en', (b) => b.visit(`${akamon.url}/saml/sso?SAMLRequest=${encodeURIComponent(garbage)}`), /not raw DEFLATE/);
    const bomb = deflateRawSync(Buffer.alloc(10_000_000, 0x20)).toString('base64');
    await expectRefused('ja', (b) => b.visit(`${akamon.url}/saml/sso?SAMLRequest=${encodeURIComponent(bomb)}`), /inflates to more than/);
  });

  test('an AssertionConsumerServiceIndex that is not registered: refused on Akamon’s page; the registered index works', async () => {
    const unknown = newId();
    const withIndex = (id: string, index: string) => editXml(plainRequest(id), (root) => root.setAttribute('AssertionConsumerServiceIndex', index));
    await expectRefused('en', (b) => b.visit(redirectWith(akamon, withIndex(unknown, '7'))), /no registered HTTP-POST consumer service has index 7/);
    expect(await storedRequests(unknown)).toBe(0);
    const known = newId();
    await expectAccepted(await new Browser(akamon.url).request(redirectWith(akamon, withIndex(known, '1'))), known);
  });

  test('ProtocolBinding HTTP-Artifact (or PAOS) to the registered consumer service: refused', async () => {
    for (const [i, binding] of ['urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact', 'urn:oasis:names:tc:SAML:2.0:bindings:PAOS'].entries()) {
      const id = newId();
      const xml = editXml(plainRequest(id, { acsUrl: plain.acsUrl }), (root) => root.setAttribute('ProtocolBinding', binding));
      await expectRefused(i ? 'ja' : 'en', (b) => b.visit(redirectWith(akamon, xml)), /answers go by HTTP-POST only/);
      expect(await storedRequests(id)).toBe(0);
    }
  });

  test('an IssueInstant ten minutes ahead (beyond the clock skew allowed) is refused; two minutes ahead is within it', async () => {
    const ahead = newId();
    await expectRefused('en', (b) => b.visit(redirectWith(akamon, plainRequest(ahead, { issueInstant: new Date(Date.now() + 600_000) }))), /too far from this server's clock/);
    expect(await storedRequests(ahead)).toBe(0);
    const near = newId();
    await expectAccepted(await new Browser(akamon.url).request(redirectWith(akamon, plainRequest(near, { issueInstant: new Date(Date.now() + 120_000) }))), near);
  });

  test('the same request ID replayed by a different browser: refused, and the first browser’s request is untouched', async () => {
    const id = newId();
    const xml = plainRequest(id);
    await expectAccepted(await new Browser(akamon.url).request(redirectWith(akamon, xml)), id);
    const page = await expectRefused('ja', (b) => b.visit(redirectWith(akamon, xml)), /received before/);
    expect(page.html).toContain('すでに使われています');
    // Over the other binding too: the ID is the SP's, whatever carried it.
    await expectRefused('en', (b) => post(b, xml), /received before/);
    expect(await storedRequests(id)).toBe(1);
  });

  test('the SAMLRequest twice in the query, or a RelayState over 1 KiB: refused as unreadable', async () => {
    const id = newId();
    const single = redirectWith(akamon, plainRequest(id));
    const twice = `${single}&${new URL(single).search.slice(1)}`;
    await expectRefused('en', (b) => b.visit(twice), /SAMLRequest twice/);
    await expectRefused('ja', (b) => b.visit(redirectWith(akamon, plainRequest(id), 'r'.repeat(1025))), /RelayState longer than 1024 bytes/);
    expect(await storedRequests(id)).toBe(0);
  });
});

describe('hostile Subjects in an AuthnRequest (core 3.4.1, profiles 4.1.4.1)', () => {
  const subject = (inner: string) => `<saml:Subject>${inner}</saml:Subject>`;

  test('a Subject that cannot be read as one NameID is refused on Akamon’s page, never a 500, and nothing is stored', async () => {
    const cases: Array<[string, RegExp]> = [
      [subject('<saml:NameID>a</saml:NameID><saml:NameID>b</saml:NameID>'), /exactly one NameID/],
      ['<saml:Subject/>', /exactly one NameID/],
      [subject('<saml:NameID>a</saml:NameID><saml:EncryptedID/>'), /exactly one NameID/],
      [subject('<saml:NameID> \n </saml:NameID>'), /empty or longer/],
      [subject(`<saml:NameID>${'x'.repeat(257)}</saml:NameID>`), /empty or longer/],
      [subject('<saml:NameID>a<x:b xmlns:x="urn:example:x"/></saml:NameID>'), /text only/],
      [subject('<saml:NameID>a</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"/>'), /SubjectConfirmation/],
      [subject('<saml:NameID>a</saml:NameID>') + subject('<saml:NameID>b</saml:NameID>'), /2 Subject elements/],
      [`<samlp:Extensions>${subject('<saml:NameID>a</saml:NameID>')}</samlp:Extensions>`, /elsewhere/],
    ];
    for (const [index, [extra, reason]] of cases.entries()) {
      const id = newId();
      await expectRefused(index % 2 ? 'ja' : 'en', (b) => b.visit(redirectWith(akamon, plainRequest(id, { extra }))), reason);
      expect(await storedRequests(id)).toBe(0);
    }
  });

  test('a Subject Akamon cannot match is answered to the SP at once: an error status and no assertion, no sign-in asked for', async () => {
    const requester = 'urn:oasis:names:tc:SAML:2.0:status:Requester';
    const unknown = [requester, 'urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal'];
    const cases: Array<[string, string[]]> = [
      [subject('<saml:EncryptedID><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"/></saml:EncryptedID>'), [requester, 'urn:oasis:names:tc:SAML:2.0:status:RequestUnsupported']],
      [subject('<saml:BaseID NameQualifier="x"/>'), [requester, 'urn:oasis:names:tc:SAML:2.0:status:RequestUnsupported']],
      // The plain SP is registered for persistent NameIDs: an address would be a question about what it is not given.
      [subject('<saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">someone@example.ac.jp</saml:NameID>'), unknown],
      [subject('<saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient">_abc</saml:NameID>'), unknown],
      [subject('<saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName">CN=someone</saml:NameID>'), unknown],
      [subject(`<saml:NameID SPNameQualifier="${signer.entityId}">abc</saml:NameID>`), unknown],
      [subject('<saml:NameID NameQualifier="https://other-idp.example.org/idp">abc</saml:NameID>'), unknown],
      [subject('<saml:NameID SPProvidedID="mine">abc</saml:NameID>'), unknown],
    ];
    for (const [extra, codes] of cases) {
      const page = await new Browser(akamon.url).visit(redirectWith(akamon, plainRequest(newId(), { extra })));
      expect([page.status, postedTo(page), responseStatus(page)]).toEqual([200, plain.acsUrl, { codes, assertions: 0 }]);
    }
  });
});

describe('the way back: /saml/continue', () => {
  test('twenty parallel answers for one state: exactly one assertion, nineteen 400 pages, one SAML session', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const continueUrl = await signInUntilContinue(browser, await plain.loginUrl(), account);
    const pages = await Promise.all(Array.from({ length: 20 }, async () => pageOf(await browser.request(continueUrl))));
    const answered = pages.filter(carriesAssertion);
    expect(answered).toHaveLength(1);
    expect(answered[0].status).toBe(200);
    expect((await plain.accept(answered[0])).profile).toBeTruthy();
    const refused = pages.filter((page) => !carriesAssertion(page));
    expect(refused.map((page) => refusalProblems(page, 'en'))).toEqual(Array.from({ length: 19 }, () => []));
    const sessions = await akamon.deps.database.db.selectFrom('saml_session').select('id').where('account_id', '=', account.id).where('client_id', '=', plain.entityId).execute();
    expect(sessions).toHaveLength(1);
  });

  test('a code of an OIDC client presented with a valid SAML state gives no assertion, and the code stays the OIDC client’s', async () => {
    const account = await akamon.createReadyAccount();
    const client = await akamon.createClient();
    const browser = new Browser(akamon.url);
    const oidc = await signIn(browser, akamon, client, account, { scope: 'openid' });
    const { continueUrl } = await untilContinue(browser, await plain.loginUrl());
    const state = new URL(continueUrl!).searchParams.get('state')!;
    const page = await browser.visit(`${akamon.url}/saml/continue?state=${encodeURIComponent(state)}&code=${encodeURIComponent(oidc.code!)}`);
    expect(postedTo(page)).toBe(plain.acsUrl);
    expect(carriesAssertion(page)).toBe(false);
    expect(responseXml(page)).toContain('urn:oasis:names:tc:SAML:2.0:status:AuthnFailed');
    expect(await akamon.deps.database.db.selectFrom('saml_session').select('id').where('account_id', '=', account.id).execute()).toHaveLength(0);
    const tokens = await tokenRequest(akamon, client, { grant_type: 'authorization_code', code: oidc.code!, redirect_uri: client.redirectUri, code_verifier: oidc.verifier });
    expect(tokens.status).toBe(200);
  });

  test('a code of another SAML SP at this SP’s state gives no assertion; at its own state it still works', async () => {
    const account = await akamon.createReadyAccount();
    const other = await librarySp(akamon, { name: 'Other SP', signRequests: false });
    const browser = new Browser(akamon.url);
    const theirs = new URL(await signInUntilContinue(browser, await other.loginUrl(), account));
    const ours = new URL((await untilContinue(browser, await plain.loginUrl())).continueUrl!);
    const swapped = await browser.visit(`${akamon.url}/saml/continue?state=${ours.searchParams.get('state')}&code=${theirs.searchParams.get('code')}`);
    expect(postedTo(swapped)).toBe(plain.acsUrl);
    expect(carriesAssertion(swapped)).toBe(false);
    const own = await browser.visit(theirs.href);
    expect(postedTo(own)).toBe(other.acsUrl);
    expect((await other.accept(own)).profile).toBeTruthy();
  });

  test('the answer is bound to the browser by its cookie: without it, a 400 page and the request left waiting; with it, the assertion', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const continueUrl = await signInUntilContinue(browser, await plain.loginUrl(), account);
    const [key, cookie] = [...browser.cookies.entries()].find(([, c]) => c.name.startsWith('akamon_saml_'))!;
    browser.cookies.delete(key);
    await expectRefused('en', () => browser.visit(continueUrl), /no SAML request of this browser/);
    // A browser that keeps no cookies at all (another person's, given the URL) gets the same.
    await expectRefused('ja', (b) => b.visit(continueUrl), /no SAML request of this browser/);
    browser.cookies.set(key, cookie);
    const page = await browser.visit(continueUrl);
    expect(carriesAssertion(page)).toBe(true);
    expect((await plain.accept(page)).profile).toBeTruthy();
  });
});

describe('IdP-initiated sign-in (/saml/init)', () => {
  test('refused for an SP not registered for it, and for an unknown one', async () => {
    await expectRefused('en', (b) => b.visit(`${akamon.url}/saml/init?sp=${encodeURIComponent(plain.entityId)}`), /does not accept sign-in started here/);
    await expectRefused('ja', (b) => b.visit(`${akamon.url}/saml/init?sp=${encodeURIComponent('https://unknown.example/sp')}`), /does not accept sign-in started here/);
  });

  test('works for an SP registered for it: an unsolicited assertion (no InResponseTo) with the RelayState given', async () => {
    const directory = await librarySp(akamon, { name: 'Directory SP', signRequests: false, settings: { idpInitiated: true } });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const continueUrl = await signInUntilContinue(browser, `${akamon.url}/saml/init?sp=${encodeURIComponent(directory.entityId)}&RelayState=home`, account);
    const page = await browser.visit(continueUrl);
    expect(postedTo(page)).toBe(directory.acsUrl);
    expect(postedFields(page).RelayState).toBe('home');
    expect(responseXml(page)).not.toContain('InResponseTo');
    expect((await directory.accept(page)).profile).toBeTruthy();
  });
});

// Found by the attack review and fixed: each of these failed before its fix.
describe('review findings', () => {
  test('ForceAuthn holds even when the browser drops prompt=login from the authorization URL', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const first = await browser.visit(await signInUntilContinue(browser, await plain.loginUrl(), account));
    expect(carriesAssertion(first)).toBe(true);
    const forced = redirectWith(
      akamon,
      editXml(plainRequest(newId()), (root) => root.setAttribute('ForceAuthn', 'true')),
    );
    const toAuth = new URL((await browser.request(forced)).headers.get('location')!);
    expect(toAuth.searchParams.get('prompt')).toBe('login');
    toAuth.searchParams.delete('prompt');
    const { continueUrl } = await untilContinue(browser, toAuth.href);
    const page = continueUrl ? await browser.visit(continueUrl) : undefined;
    expect(page && carriesAssertion(page)).toBeFalsy();
  });

  test('the bridge registration’s code cannot be redeemed at /token by whoever sees the way-back URL', async () => {
    const account = await akamon.createReadyAccount();
    const continueUrl = new URL(await signInUntilContinue(new Browser(akamon.url), await plain.loginUrl(), account));
    const tokens = await tokenRequest(
      akamon,
      { clientId: plain.entityId, clientSecret: null },
      {
        grant_type: 'authorization_code',
        code: continueUrl.searchParams.get('code')!,
        redirect_uri: `${akamon.url}/saml/continue`,
        // The PKCE verifier is the state itself (sso.ts), which is in the same URL.
        code_verifier: continueUrl.searchParams.get('state')!,
      },
    );
    expect(tokens.status).toBe(400);
  });

  test('a code is redeemed only for the request it was issued for (not another waiting request of the same SP)', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    await browser.visit(await signInUntilContinue(browser, await plain.loginUrl(), account));
    const first = new URL((await untilContinue(browser, await plain.loginUrl())).continueUrl!);
    // The second request may ask what the first did not (ForceAuthn, another NameID format...).
    const second = new URL((await untilContinue(browser, await plain.loginUrl())).continueUrl!);
    const swapped = await browser.visit(`${akamon.url}/saml/continue?state=${second.searchParams.get('state')}&code=${first.searchParams.get('code')}`);
    expect(carriesAssertion(swapped)).toBe(false);
  });

  test('RequestedAuthnContext "better" than password is not answered with a password-only assertion (core 3.3.2.2.1)', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    await browser.visit(await signInUntilContinue(browser, await plain.loginUrl(), account));
    const better = plainRequest(newId(), {
      extra:
        '<samlp:RequestedAuthnContext Comparison="better"><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></samlp:RequestedAuthnContext>',
    });
    expect(carriesAssertion(await browser.visit(redirectWith(akamon, better)))).toBe(false);
  });

  test('a request whose Subject names another person gets no assertion for the one signed in (core 3.4.1.4)', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    await browser.visit(await signInUntilContinue(browser, await plain.loginUrl(), account));
    const forSomeoneElse = plainRequest(newId(), { extra: '<saml:Subject><saml:NameID>someone-else</saml:NameID></saml:Subject>' });
    expect(carriesAssertion(await browser.visit(redirectWith(akamon, forSomeoneElse)))).toBe(false);
  });

  test('an entityID longer than a client ID may be is refused at registration, not half-registered (404 and a row)', async () => {
    const entityId = `https://long.example.ac.jp/${'x'.repeat(200)}`;
    const created = await adminApi(akamon, 'POST', '/clients', { protocol: 'saml', name: 'Long', spMetadata: plain.metadataXml.replaceAll(plain.entityId, entityId) });
    const rows = await akamon.deps.database.db.selectFrom('client').select('client_id').where('client_id', '=', entityId).execute();
    expect([created.status, rows.length]).toEqual([400, 0]);
  });

  test('encrypted assertions to an encryption certificate without an RSA key are refused at registration', async () => {
    const ec = await testKeyPair('ec', 'sp-ec.example.ac.jp');
    const entityId = 'https://sp-ec.example.ac.jp/saml';
    const metadata = new SAML({ issuer: entityId, callbackUrl: `${entityId}/acs`, idpCert: 'unused', decryptionPvk: ec.privatePem } as ConstructorParameters<
      typeof SAML
    >[0]).generateServiceProviderMetadata(ec.certificatePem, null);
    const created = await adminApi(akamon, 'POST', '/clients', { protocol: 'saml', name: 'EC', spMetadata: metadata, encryptAssertions: true });
    expect(created.status).toBe(400);
  });

  test('an HTTP-POST request arriving cross-site (its SameSite=Lax cookie not sent) leaves the browser’s other waiting request answerable', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const waiting = await signInUntilContinue(browser, await plain.loginUrl(), account);
    // Another request over HTTP-POST (a cross-site form: a real browser sends no SameSite=Lax
    // cookie with it) gets a binding cookie of its own and leaves the first one in place.
    const before = [...browser.cookies.values()].filter((c) => c.name.startsWith('akamon_saml_')).length;
    expect((await post(browser, plainRequest(newId()))).status).toBe(302);
    expect([...browser.cookies.values()].filter((c) => c.name.startsWith('akamon_saml_'))).toHaveLength(before + 1);
    expect(carriesAssertion(await browser.visit(waiting))).toBe(true);
  });

  test('a signed request without a Destination is refused (bindings 3.4.5.2, 3.5.5.2)', async () => {
    const id = newId();
    const xml = signXml(
      editXml(signerRequest(id), (root) => root.removeAttribute('Destination')),
      signer.keys,
    );
    await expectRefused('en', (b) => post(b, xml), /Destination/);
  });
});
