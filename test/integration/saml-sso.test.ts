import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { adminApi, startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { signIn } from '../support/flows.ts';
import { authnRequestXml, librarySp, passwordSteps, postedFields, postedTo, redirectWith, responseStatus, responseXml, type LibrarySp } from '../support/saml-sp.ts';

// Issue 17: Akamon as a SAML 2.0 IdP, tried with an independent SP library (@node-saml/node-saml)
// over real HTTP: the same sign-in steps as OIDC, what the SP is told, and the refusals.

let akamon: RunningAkamon;
let sp: LibrarySp;
/** An SP that does not sign its requests, for the requests the tests make by hand. */
let plain: LibrarySp;

beforeAll(async () => {
  akamon = await startAkamon({ env: { AKAMON_REALM_SUFFIX: 'utac.example.ac.jp' } });
  sp = await librarySp(akamon, { name: 'Library', settings: { attributes: ['eduPersonPrincipalName', 'mail', 'displayName', 'eduPersonScopedAffiliation'] } });
  plain = await librarySp(akamon, { name: 'Plain', signRequests: false });
});
afterAll(() => akamon.close());

describe('SAML single sign-on', () => {
  test('the IdP metadata names the endpoints and the signing certificate', async () => {
    const response = await fetch(`${akamon.url}/saml/metadata`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/samlmetadata\+xml/);
    const xml = await response.text();
    expect(xml).toContain(`entityID="${akamon.url}/saml/metadata"`);
    expect(xml).toContain(`Location="${akamon.url}/saml/sso"`);
    expect(xml).toMatch(/<md:KeyDescriptor use="signing">/);
  });

  test('registered from its metadata: the entityID is its ID; the CLI-facing view lists the consumer service', async () => {
    const shown = await adminApi(akamon, 'GET', `/clients/${encodeURIComponent(sp.entityId)}`);
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({ clientId: sp.entityId, protocol: 'saml', nameIdFormat: 'persistent', signed: 'both' });
    expect(shown.body.spMetadata.acs[0]).toMatchObject({ location: sp.acsUrl, binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST' });
  });

  test('SP-initiated sign-in with a password: a signed assertion with a pairwise NameID and only the released attributes', async () => {
    const account = await akamon.createReadyAccount({ email: 'hanako@example.ac.jp', name: 'Hanako Tanaka', affiliation: 'student' });
    const browser = new Browser(akamon.url);
    const page = await passwordSteps(browser, await browser.visit(await sp.loginUrl({ relayState: 'back-to/ページ' })), account);
    expect(page.status).toBe(200);
    expect(postedTo(page)).toBe(sp.acsUrl);
    expect(postedFields(page).RelayState).toBe('back-to/ページ');
    const { profile } = await sp.accept(page);
    expect(profile).toBeTruthy();
    expect(profile!.nameID).toMatch(/^[a-z0-9]{20,}$/);
    expect(profile!.nameID).not.toContain(account.commonId);
    expect(profile!.nameIDFormat).toBe('urn:oasis:names:tc:SAML:2.0:nameid-format:persistent');
    expect(profile!['urn:oid:1.3.6.1.4.1.5923.1.1.1.6']).toBe(`${account.commonId}@utac.example.ac.jp`);
    expect(profile!['urn:oid:0.9.2342.19200300.100.1.3']).toBe('hanako@example.ac.jp');
    expect(profile!['urn:oid:2.16.840.1.113730.3.1.241']).toBe('Hanako Tanaka');
    expect(profile!['urn:oid:1.3.6.1.4.1.5923.1.1.1.9']).toEqual(['student@utac.example.ac.jp', 'member@utac.example.ac.jp']);
    // Not registered for it: not released.
    expect(responseXml(page)).not.toContain('urn:oid:2.5.4.42');
    expect(responseXml(page)).toContain('urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport');
    // The same person at the same SP: the same NameID next time (persistent), from the SSO session.
    const again = await browser.visit(await sp.loginUrl());
    expect((await sp.accept(again)).profile!.nameID).toBe(profile!.nameID);
    // The sign-in is in the sign-in log under the SP's entityID, as for OIDC clients.
    const events = await akamon.deps.database.db.selectFrom('signin_event').select(['client_id', 'result']).where('account_id', '=', account.id).execute();
    expect(events).toEqual(expect.arrayContaining([expect.objectContaining({ client_id: sp.entityId, result: 'success' })]));
  });

  test('an attribute under the name an SP wants (Slack: mail as User.Email), the rest under their URI names', async () => {
    const slackLike = await librarySp(akamon, { name: 'Chat', settings: { attributes: ['mail', 'givenName'], attributeNames: ['mail=User.Email'] } });
    const account = await akamon.createReadyAccount({ email: 'taro@example.ac.jp', profile: { givenName: 'Taro', familyName: 'Yamada' } });
    const browser = new Browser(akamon.url);
    const { profile } = await slackLike.accept(await passwordSteps(browser, await browser.visit(await slackLike.loginUrl()), account));
    expect(profile!['User.Email']).toBe('taro@example.ac.jp');
    expect(profile!['urn:oid:0.9.2342.19200300.100.1.3']).toBeUndefined();
    expect(profile!['urn:oid:2.5.4.42']).toBe('Taro');
  });

  test('single sign-on across protocols: signed in at an OIDC client, the SAML SP needs no password', async () => {
    const account = await akamon.createReadyAccount();
    const client = await akamon.createClient();
    const browser = new Browser(akamon.url);
    await signIn(browser, akamon, client, account, { scope: 'openid' });
    const page = await browser.visit(await sp.loginUrl());
    expect(postedTo(page)).toBe(sp.acsUrl);
    expect((await sp.accept(page)).profile).toBeTruthy();
  });

  test('an SP flagged --require-mfa gets MFA: a person without it is led to set it up, never straight to the SP', async () => {
    const strict = await librarySp(akamon, { name: 'VPN', settings: { requireMfa: true } });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const page = await passwordSteps(browser, await browser.visit(await strict.loginUrl()), account);
    expect(postedTo(page)).toBeUndefined();
    expect(page.html).toMatch(/authenticator|security key|認証アプリ/i);
  });

  test('an access-rule denial shows the 53003 page; leaving it sends the SP a signed RequestDenied, never an assertion', async () => {
    const staffOnly = await librarySp(akamon, { name: 'Staff portal', settings: { allowedAffiliations: ['staff'] } });
    const account = await akamon.createReadyAccount({ affiliation: 'student' });
    const browser = new Browser(akamon.url);
    const denied = await passwordSteps(browser, await browser.visit(await staffOnly.loginUrl()), account);
    expect(denied.status).toBe(403);
    expect(denied.html).toContain('53003');
    const answer = await browser.submit(denied, /\/leave$/, {});
    expect(postedTo(answer)).toBe(staffOnly.acsUrl);
    expect(responseXml(answer)).toContain('urn:oasis:names:tc:SAML:2.0:status:RequestDenied');
    expect(responseXml(answer)).not.toContain('Assertion');
    // The SP is told which rule refused (the StatusMessage), for its administrators.
    await expect(staffOnly.accept(answer)).rejects.toThrow(/affiliation_not_allowed/);
  });

  test('IsPassive without a session answers NoPassive, not a page', async () => {
    const browser = new Browser(akamon.url);
    const page = await browser.visit(await sp.loginUrl({ passive: true }));
    expect(postedTo(page)).toBe(sp.acsUrl);
    expect(responseXml(page)).toContain('urn:oasis:names:tc:SAML:2.0:status:NoPassive');
  });
});

describe('SAML step-up, re-authentication, IdP-initiated sign-in and keys', () => {
  test('REFEDS MFA asked for by the SP is a step-up: a person without MFA is led to set it up, not answered', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const page = await passwordSteps(browser, await browser.visit(await sp.loginUrl({ mfa: true })), account);
    expect(postedTo(page)).toBeUndefined();
    expect(page.html).toMatch(/authenticator|security key|認証アプリ/i);
  });

  test('ForceAuthn asks for the password again inside a live session', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    await passwordSteps(browser, await browser.visit(await sp.loginUrl()), account);
    const forced = await browser.visit(await sp.loginUrl({ forceAuthn: true }));
    expect(postedTo(forced)).toBeUndefined();
    expect(forced.html).toMatch(/name="password"|name="identifier"|<h1>Choose an account<\/h1>/);
  });

  test('IdP-initiated: the service directory links an SP that accepts it; the answer has no InResponseTo', async () => {
    const portal = await librarySp(akamon, { name: 'Portal', settings: { idpInitiated: true, listed: true } });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const directory = await browser.visit('/services');
    const link = `/saml/init?sp=${encodeURIComponent(portal.entityId)}`;
    expect(directory.html).toContain(link.replaceAll('&', '&amp;'));
    const page = await passwordSteps(browser, await browser.visit(link), account);
    expect(postedTo(page)).toBe(portal.acsUrl);
    expect(responseXml(page)).not.toContain('InResponseTo');
    expect((await portal.accept(page)).profile).toBeTruthy();
    // An SP not registered for it is refused on Akamon's page.
    const refused = await new Browser(akamon.url).visit(`/saml/init?sp=${encodeURIComponent(sp.entityId)}`);
    expect([refused.status, postedTo(refused)]).toEqual([400, undefined]);
  });

  test('a key rotation publishes the next certificate before it signs; answers stay signed with the current one', async () => {
    const before = await (await fetch(`${akamon.url}/saml/metadata`)).text();
    await akamon.akamon.rotateKeys();
    const after = await (await fetch(`${akamon.url}/saml/metadata`)).text();
    const certificates = (xml: string) => [...xml.matchAll(/<ds:X509Certificate>([^<]+)</g)].map((m) => m[1]);
    expect(certificates(after)).toHaveLength(certificates(before).length + 1);
    expect(certificates(after)[0]).toBe(certificates(before)[0]);
    // The SP configured with the certificate it read before the rotation still accepts the answers.
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const page = await passwordSteps(browser, await browser.visit(await sp.loginUrl()), account);
    expect((await sp.accept(page)).profile).toBeTruthy();
  });
});

describe('SAML requests naming their Subject (core 3.4.1.4, profiles 4.1.4.1)', () => {
  const SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
  const UNKNOWN_PRINCIPAL = ['urn:oasis:names:tc:SAML:2.0:status:Requester', 'urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal'];
  const naming = (nameId: string, fields: { attributes?: string; passive?: boolean } = {}) =>
    authnRequestXml(akamon, { issuer: plain.entityId, passive: fields.passive, extra: `<saml:Subject><saml:NameID${fields.attributes ?? ''}>${nameId}</saml:NameID></saml:Subject>` });

  /** The persistent NameID the plain SP gets for an account, from a sign-in of its own in a browser of its own. */
  async function nameIdAtPlain(account: { commonId: string; password: string }): Promise<string> {
    const browser = new Browser(akamon.url);
    return (await plain.accept(await passwordSteps(browser, await browser.visit(await plain.loginUrl()), account))).profile!.nameID;
  }

  test('naming the person who signs in: an assertion about them, at the sign-in and again from the session', async () => {
    const account = await akamon.createReadyAccount();
    const nameId = await nameIdAtPlain(account);
    const browser = new Browser(akamon.url);
    const qualified = ` Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" NameQualifier="${akamon.url}/saml/metadata" SPNameQualifier="${plain.entityId}"`;
    const signedIn = await passwordSteps(browser, await browser.visit(redirectWith(akamon, naming(nameId, { attributes: qualified }))), account);
    expect(responseStatus(signedIn)).toEqual({ codes: [SUCCESS], assertions: 1 });
    expect((await plain.accept(signedIn)).profile!.nameID).toBe(nameId);
    // From the session, the format left out (the SP's registered one is meant).
    const again = await browser.visit(redirectWith(akamon, naming(nameId)));
    expect(responseStatus(again)).toEqual({ codes: [SUCCESS], assertions: 1 });
    expect((await plain.accept(again)).profile!.nameID).toBe(nameId);
  });

  test('naming another person: the one who signs in gets no assertion; the SP gets Requester/UnknownPrincipal', async () => {
    const [named, other] = [await akamon.createReadyAccount(), await akamon.createReadyAccount()];
    const nameId = await nameIdAtPlain(named);
    const browser = new Browser(akamon.url);
    const page = await passwordSteps(browser, await browser.visit(redirectWith(akamon, naming(nameId))), other);
    expect(postedTo(page)).toBe(plain.acsUrl);
    expect(responseStatus(page)).toEqual({ codes: UNKNOWN_PRINCIPAL, assertions: 0 });
    await expect(plain.accept(page)).rejects.toThrow();
  });

  test('naming another person than the one whose session the browser has: the session gives no assertion, even passively', async () => {
    const [named, other] = [await akamon.createReadyAccount(), await akamon.createReadyAccount()];
    const nameId = await nameIdAtPlain(named);
    const browser = new Browser(akamon.url);
    const own = await passwordSteps(browser, await browser.visit(await plain.loginUrl()), other);
    expect(responseStatus(own)).toEqual({ codes: [SUCCESS], assertions: 1 });
    const from = akamon.logs.length;
    for (const passive of [false, true]) {
      const page = await browser.visit(redirectWith(akamon, naming(nameId, { passive })));
      expect([postedTo(page), responseStatus(page)]).toEqual([plain.acsUrl, { codes: UNKNOWN_PRINCIPAL, assertions: 0 }]);
    }
    // Not silently: the operator is told why the SP got no assertion.
    expect(akamon.logs.slice(from).join('')).toContain('the person signed in is not the Subject the request named');
  });
});

describe('SAML refusals', () => {
  test('a consumer service that is not registered is refused on Akamon’s own page, with no answer to it', async () => {
    const browser = new Browser(akamon.url);
    const page = await browser.visit(redirectWith(akamon, authnRequestXml(akamon, { issuer: plain.entityId, acsUrl: 'https://evil.example.com/acs' })));
    expect(page.status).toBe(400);
    expect(postedTo(page)).toBeUndefined();
    expect(page.html).toMatch(/cannot accept|受け付けられません/);
    expect(akamon.logs.join('')).toContain('https://evil.example.com/acs is not in the registered metadata');
  });

  test('an unknown issuer, an unsigned request from an SP that signs, a stale one, a wrong destination: 400 pages', async () => {
    const unsigned = await librarySp(akamon, { settings: { signedRequests: true } });
    const cases = [
      authnRequestXml(akamon, { issuer: 'https://unknown.example.org/sp' }),
      authnRequestXml(akamon, { issuer: unsigned.entityId }),
      authnRequestXml(akamon, { issuer: plain.entityId, issueInstant: new Date(Date.now() - 3_600_000) }),
      authnRequestXml(akamon, { issuer: plain.entityId, destination: 'https://other-idp.example.org/sso' }),
    ];
    for (const xml of cases) {
      const page = await new Browser(akamon.url).visit(redirectWith(akamon, xml));
      expect([page.status, postedTo(page)]).toEqual([400, undefined]);
    }
  });

  test('a replayed AuthnRequest ID is refused', async () => {
    const xml = authnRequestXml(akamon, { issuer: plain.entityId, id: `_replay${Date.now()}` });
    const first = await new Browser(akamon.url).request(redirectWith(akamon, xml));
    expect(first.status).toBe(302);
    const second = await new Browser(akamon.url).visit(redirectWith(akamon, xml));
    expect(second.status).toBe(400);
    expect(second.html).toMatch(/already used|すでに使われています/);
  });

  test('a DTD, malformed base64 and an oversized RelayState: 400 pages, never a 500', async () => {
    const dtd = `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>${authnRequestXml(akamon, { issuer: plain.entityId })}`;
    const pages = await Promise.all([
      new Browser(akamon.url).visit(redirectWith(akamon, dtd)),
      new Browser(akamon.url).visit(`${akamon.url}/saml/sso?SAMLRequest=%%%not-base64`),
      new Browser(akamon.url).visit(redirectWith(akamon, authnRequestXml(akamon, { issuer: plain.entityId }), 'r'.repeat(2000))),
    ]);
    expect(pages.map((p) => p.status)).toEqual([400, 400, 400]);
  });

  test('the way back is single-use and bound to the browser that started it', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const login = await browser.request(await sp.loginUrl());
    const auth = login.headers.get('location')!;
    const state = new URL(auth).searchParams.get('state')!;
    // Another browser presenting this state (without the first browser's cookie) gets nothing.
    const stranger = await new Browser(akamon.url).visit(`${akamon.url}/saml/continue?state=${state}&error=access_denied`);
    expect([stranger.status, postedTo(stranger)]).toEqual([400, undefined]);
    const page = await passwordSteps(browser, await browser.visit(auth), account);
    expect(postedTo(page)).toBe(sp.acsUrl);
    const replay = await browser.visit(`${akamon.url}/saml/continue?state=${state}&error=access_denied`);
    expect([replay.status, postedTo(replay)]).toEqual([400, undefined]);
  });
});
