import { sign } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { adminApi, startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { librarySp, passwordSteps, postedFields, postedTo, responseStatus, responseXml, type LibrarySp } from '../support/saml-sp.ts';
import { refusalProblems, signInUntilContinue, untilContinue, XMLDSIG } from '../support/saml-attacks.ts';
import { SamlSessionStore } from '../../src/saml/saml-session.store.ts';
import { MAX_SESSION_INDEXES } from '../../src/saml/logout-message.ts';

// The SAML paths beside the main flow (session 17's probe): what changed between the sign-in and
// the answer (access rules, the SP's metadata), what the browser may write into the way back, and
// the LogoutRequests an SP may send. Each rule here is one Akamon keeps on its OIDC paths too. The
// last block holds probes that found nothing, kept so that they stay tried.

let akamon: RunningAkamon;

beforeAll(async () => {
  akamon = await startAkamon();
});
afterAll(() => akamon.close());

const STATUS = {
  requestDenied: 'urn:oasis:names:tc:SAML:2.0:status:RequestDenied',
  responder: 'urn:oasis:names:tc:SAML:2.0:status:Responder',
};
const query = (url: string) => new URL(url).search.slice(1);
const liveSamlSessions = (accountId: string) => akamon.deps.database.db.selectFrom('saml_session').select('client_id').where('account_id', '=', accountId).where('ended_at', 'is', null).execute();
const signinFailures = (accountId: string) =>
  akamon.deps.database.db.selectFrom('signin_event').select(['client_id', 'reason']).where('account_id', '=', accountId).where('result', '=', 'failure').execute();
/** The StatusMessage of a posted status response, if it has one. */
const statusMessage = (xml: string) => /<(?:\w+:)?StatusMessage>([^<]*)</.exec(xml)?.[1];

describe('/saml/continue asks the access rules again when it makes the answer (as /token does)', () => {
  test('a person denied at the SP after the code was issued gets no assertion: RequestDenied naming the rule, and the refusal in the sign-in log', async () => {
    const sp = await librarySp(akamon, { name: 'Deny later' });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const continueUrl = await signInUntilContinue(browser, await sp.loginUrl(), account);
    const denied = await adminApi(akamon, 'POST', `/clients/${encodeURIComponent(sp.entityId)}/accounts`, { commonId: account.commonId, effect: 'deny' });
    expect(denied.status).toBe(200);
    const page = await browser.visit(continueUrl);
    expect(postedTo(page)).toBe(sp.acsUrl);
    expect(responseStatus(page)).toEqual({ codes: [STATUS.responder, STATUS.requestDenied], assertions: 0 });
    expect(statusMessage(responseXml(page))).toBe('the account is not allowed to use this system (account_denied)');
    expect(await signinFailures(account.id)).toEqual([{ client_id: sp.entityId, reason: 'access_denied.account_denied' }]);
    expect(await liveSamlSessions(account.id)).toEqual([]);
  });

  test('an SP made to require MFA after a password-only code was issued gets no password-only assertion (mfa_required)', async () => {
    const sp = await librarySp(akamon, { name: 'MFA later' });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const continueUrl = await signInUntilContinue(browser, await sp.loginUrl(), account);
    const flagged = await adminApi(akamon, 'PATCH', `/clients/${encodeURIComponent(sp.entityId)}`, { requireMfa: true });
    expect(flagged.status).toBe(200);
    const page = await browser.visit(continueUrl);
    expect(responseStatus(page)).toEqual({ codes: [STATUS.responder, STATUS.requestDenied], assertions: 0 });
    expect(statusMessage(responseXml(page))).toContain('(mfa_required)');
    expect(await signinFailures(account.id)).toEqual([{ client_id: sp.entityId, reason: 'access_denied.mfa_required' }]);
  });
});

describe('what the SP is told', () => {
  test('an error description the browser wrote into /saml/continue never reaches the signed response: a denial without a reason', async () => {
    const sp = await librarySp(akamon, { name: 'Told' });
    const browser = new Browser(akamon.url);
    // No sign-in at all: the SP's request, then the way back written by hand with the state it carries.
    const started = await browser.request(await sp.loginUrl());
    const state = new URL(started.headers.get('location')!).searchParams.get('state')!;
    const forged = 'the account is not allowed to use this system (account_denied): call +81-3-0000-0000';
    const page = await browser.visit(`/saml/continue?state=${state}&error=access_denied&error_description=${encodeURIComponent(forged)}`);
    expect(postedTo(page)).toBe(sp.acsUrl);
    // Signed by Akamon, so the SP (and its administrators) would take it as Akamon's word.
    expect(responseStatus(page)).toEqual({ codes: [STATUS.responder, STATUS.requestDenied], assertions: 0 });
    expect(statusMessage(responseXml(page))).toBeUndefined();
    expect(responseXml(page)).not.toContain('+81-3-0000-0000');
  });
});

describe('the consumer service at the moment of the answer', () => {
  test('a consumer service taken out of the SP’s metadata while the request waits: Akamon’s refusal page, nothing posted to it', async () => {
    const sp = await librarySp(akamon, { name: 'Moved ACS' });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const continueUrl = await signInUntilContinue(browser, await sp.loginUrl(), account);
    // The operator replaces the metadata: the old consumer service (a host being retired, or taken over) is gone.
    const moved = sp.metadataXml.replace(sp.acsUrl, sp.acsUrl.replace('/saml/acs', '/saml/acs-new'));
    const updated = await adminApi(akamon, 'PATCH', `/clients/${encodeURIComponent(sp.entityId)}`, { spMetadata: moved });
    expect(updated.status).toBe(200);
    const page = await browser.visit(continueUrl);
    expect(refusalProblems(page, 'en')).toEqual([]);
    expect(await liveSamlSessions(account.id)).toEqual([]);
  });
});

/** A LogoutRequest of the test's own making, signed for the HTTP-Redirect binding with the SP's key. */
function signedLogoutUrl(sp: LibrarySp, fields: { nameId: string; sessionIndexes: string[]; destination?: null }): string {
  const destination = fields.destination === null ? '' : ` Destination="${akamon.url}/saml/slo"`;
  const xml = [
    `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"`,
    ` ID="_lo${Math.random().toString(16).slice(2)}" Version="2.0" IssueInstant="${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}"${destination}>`,
    `<saml:Issuer>${sp.entityId}</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">${fields.nameId}</saml:NameID>`,
    ...fields.sessionIndexes.map((index) => `<samlp:SessionIndex>${index}</samlp:SessionIndex>`),
    `</samlp:LogoutRequest>`,
  ].join('');
  const octets = `SAMLRequest=${encodeURIComponent(deflateRawSync(Buffer.from(xml)).toString('base64'))}&SigAlg=${encodeURIComponent(XMLDSIG.rsaSha256)}`;
  return `${akamon.url}/saml/slo?${octets}&Signature=${encodeURIComponent(sign('sha256', Buffer.from(octets), sp.keys.privatePem).toString('base64'))}`;
}

/** Signs in at the SP through Akamon: the person's NameID and SessionIndex there. */
async function signedInAt(sp: LibrarySp, browser: Browser, account: { commonId: string; password: string }) {
  const { profile } = await sp.accept(await passwordSteps(browser, await browser.visit(await sp.loginUrl()), account));
  return profile!;
}

describe('single logout requests', () => {
  test('a signed LogoutRequest naming the person without SessionIndex ends all their sessions at that SP (core 3.7.3.2), and says Success', async () => {
    const sp = await librarySp(akamon, { name: 'Logout without index' });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const profile = await signedInAt(sp, browser, account);
    // A second browser, a second session at the same SP for the same person.
    await signedInAt(sp, new Browser(akamon.url), account);
    expect(await liveSamlSessions(account.id)).toHaveLength(2);
    const url = await sp.saml.getLogoutUrlAsync({ ...profile, sessionIndex: undefined } as never, 'relay', {});
    const answered = await browser.request(url);
    expect(answered.status).toBe(302);
    const location = answered.headers.get('location')!;
    const result = await sp.saml.validateRedirectAsync(Object.fromEntries(new URL(location).searchParams), query(location));
    expect(result.loggedOut).toBe(true);
    // Told the person is signed out, the SP can rely on it: their Akamon sessions are over.
    expect(await liveSamlSessions(account.id)).toEqual([]);
    expect(postedTo(await browser.visit(await sp.loginUrl()))).toBeUndefined();
  });

  test('an unsigned LogoutRequest without SessionIndex from an SP without a key is refused: a NameID alone proves nothing', async () => {
    // The guard of the NameID path above: an unsigned request's only proof is a SessionIndex given to that SP alone.
    const sp = await librarySp(akamon, { name: 'Unkeyed, no index', signRequests: false });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const profile = await signedInAt(sp, browser, account);
    const url = await sp.saml.getLogoutUrlAsync({ ...profile, sessionIndex: undefined } as never, 'relay', {});
    expect((await browser.request(url)).status).toBe(400);
    expect(await liveSamlSessions(account.id)).toHaveLength(1);
  });

  test('a signed LogoutRequest without Destination is refused, as a signed AuthnRequest without one is (bindings 3.4.5.2)', async () => {
    const sp = await librarySp(akamon, { name: 'No destination' });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const profile = await signedInAt(sp, browser, account);
    // Akamon's own LogoutRequests and node-saml's carry it; one without it may have been meant for another IdP.
    const page = await browser.visit(signedLogoutUrl(sp, { nameId: profile.nameID, sessionIndexes: [String(profile.sessionIndex)], destination: null }));
    expect(page.status).toBe(400);
    expect(await liveSamlSessions(account.id)).toHaveLength(1);
  });

  test(`more than ${MAX_SESSION_INDEXES} SessionIndexes are refused as too large before any lookup; up to ${MAX_SESSION_INDEXES} are looked up in one query`, async () => {
    // An SP without a signing key: anyone can write its LogoutRequests, and no rate limit applies to /saml/slo.
    const unkeyed = await librarySp(akamon, { name: 'Unkeyed', signRequests: false });
    expect(unkeyed.metadataXml).not.toContain('KeyDescriptor');
    const indexes = Array.from({ length: 1700 }, (_, i) => `<p:SessionIndex>_${i}</p:SessionIndex>`).join('');
    const stuffed = [
      `<p:LogoutRequest xmlns:p="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:s="urn:oasis:names:tc:SAML:2.0:assertion" ID="_x${Date.now()}" Version="2.0"`,
      ` IssueInstant="${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}"><s:Issuer>${unkeyed.entityId}</s:Issuer><s:NameID>x</s:NameID>${indexes}</p:LogoutRequest>`,
    ].join('');
    expect(Buffer.byteLength(stuffed)).toBeLessThan(64 * 1024);
    const sp = await librarySp(akamon, { name: 'Many indexes' });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const profile = await signedInAt(sp, browser, account);
    const lookups = jest.spyOn(SamlSessionStore.prototype, 'named');
    try {
      const refused = await fetch(`${akamon.url}/saml/slo?SAMLRequest=${encodeURIComponent(deflateRawSync(Buffer.from(stuffed)).toString('base64'))}`, { redirect: 'manual' });
      expect(refused.status).toBe(400);
      expect(lookups).not.toHaveBeenCalled();
      const others = Array.from({ length: MAX_SESSION_INDEXES - 1 }, (_, i) => `_other${i}`);
      const answered = await browser.request(signedLogoutUrl(sp, { nameId: profile.nameID, sessionIndexes: [...others, String(profile.sessionIndex)] }));
      expect(answered.status).toBe(302);
      expect(lookups).toHaveBeenCalledTimes(1);
      expect(await liveSamlSessions(account.id)).toEqual([]);
    } finally {
      lookups.mockRestore();
    }
  });
});

describe('probes that found nothing (controls)', () => {
  test('the same LogoutResponse sent eight times at once carries the logout on once', async () => {
    const first = await librarySp(akamon, { name: 'Race A' });
    const second = await librarySp(akamon, { name: 'Race B' });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const atFirst = await signedInAt(first, browser, account);
    await second.accept(await browser.visit(await second.loginUrl()));
    const toSecond = (await browser.request(await first.saml.getLogoutUrlAsync(atFirst, 'r', {}))).headers.get('location')!;
    const received = await second.saml.validateRedirectAsync(Object.fromEntries(new URL(toSecond).searchParams), query(toSecond));
    const answer = await second.saml.getLogoutResponseUrlAsync(received.profile!, new URL(toSecond).searchParams.get('RelayState')!, {}, true);
    const statuses = (await Promise.all(Array.from({ length: 8 }, () => browser.request(answer)))).map((r) => r.status).sort();
    expect(statuses).toEqual([302, 400, 400, 400, 400, 400, 400, 400]);
  });

  test('an access rule added after the SSO session: the next SAML request from the session is denied on the 53003 page', async () => {
    const sp = await librarySp(akamon, { name: 'Rule after session' });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    await signedInAt(sp, browser, account);
    await adminApi(akamon, 'POST', `/clients/${encodeURIComponent(sp.entityId)}/accounts`, { commonId: account.commonId, effect: 'deny' });
    const page = await browser.visit(await sp.loginUrl());
    expect(page.status).toBe(403);
    expect(postedTo(page)).toBeUndefined();
  });

  test('IsPassive at a require-MFA SP with a password-only session: NoPassive, no assertion', async () => {
    const open = await librarySp(akamon, { name: 'Open' });
    const strict = await librarySp(akamon, { name: 'Strict', settings: { requireMfa: true } });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    await signedInAt(open, browser, account);
    const page = await browser.visit(await strict.loginUrl({ passive: true }));
    expect(postedTo(page)).toBe(strict.acsUrl);
    expect(responseStatus(page).assertions).toBe(0);
  });

  test('a RelayState carrying markup is posted back escaped', async () => {
    // Unsigned: node-saml signs the RelayState's octets before its URL re-encodes "(" and ")".
    const sp = await librarySp(akamon, { name: 'Relay', signRequests: false });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const evil = '"><script>alert(1)</script>';
    const page = await passwordSteps(browser, await browser.visit(await sp.loginUrl({ relayState: evil })), account);
    expect(page.html).not.toContain('<script>alert(1)');
    expect(postedFields(page).RelayState).toBe(evil);
  });

  test('an account that must change its password gets no assertion, passively or not, while the change is pending', async () => {
    const sp = await librarySp(akamon, { name: 'Must change' });
    const account = await akamon.createAccount();
    const browser = new Browser(akamon.url);
    const change = await passwordSteps(browser, await browser.visit(await sp.loginUrl()), account);
    expect(postedTo(change)).toBeUndefined();
    expect(change.html).toMatch(/new password|新しいパスワード/i);
    const passive = await browser.visit(await sp.loginUrl({ passive: true }));
    expect(responseStatus(passive).assertions).toBe(0);
    const again = await browser.visit(await sp.loginUrl());
    expect(postedTo(again)).toBeUndefined();
  });

  test('suspension after the code: /saml/continue gives no assertion, and a new request gets no code', async () => {
    const sp = await librarySp(akamon, { name: 'Suspend later' });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const continueUrl = await signInUntilContinue(browser, await sp.loginUrl(), account);
    const suspended = await adminApi(akamon, 'POST', `/accounts/${account.commonId}/suspend`, {});
    expect(suspended.status).toBe(200);
    const page = await browser.visit(continueUrl);
    expect(postedTo(page) === undefined || responseStatus(page).assertions === 0).toBe(true);
    const direct = await untilContinue(new Browser(akamon.url), await sp.loginUrl());
    expect(direct.continueUrl).toBeUndefined();
  });
});
