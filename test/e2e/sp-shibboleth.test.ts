import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Browser as ChromiumBrowser, Page as ChromiumPage } from 'playwright-core';
import { ALG, AUTHN_CONTEXT, NAMEID_FORMAT, NS, STATUS } from '../../src/saml/constants.ts';
import { adminApi, startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { CHROMIUM, launchChromium } from '../support/chromium.ts';
import { akamonSessions, missingPackage } from '../support/relying-party.ts';
import { enterPassword, parseXml, sentTo, spWindows, textOf } from '../support/sp-window.ts';
import { readShibbolethPage, SHIBBOLETH_PACKAGES, startShibbolethSp, type ShibbolethPage, type ShibbolethSp } from '../support/shibboleth-sp.ts';

// Issue 17, "how it is shown": Akamon as the identity provider of the SAML SP most universities
// run, Debian's Shibboleth SP 3 (shibd and Apache's mod_shib, test/support/shibboleth-sp.ts),
// registered from the metadata the SP itself serves and signed in to through a real browser.
// What this adds to the mellon test (test/e2e/sp-mellon.test.ts): an SP that asks for no NameID
// format, keeps scoped attributes only in the scope the IdP's metadata declares (shibmd:Scope),
// and checks the persistent NameID's qualifiers.

const unavailable = missingPackage({ ...SHIBBOLETH_PACKAGES, [CHROMIUM]: 'chromium' });

const REALM = 'utac.example.ac.jp';
const RELEASED = ['eduPersonPrincipalName', 'eduPersonScopedAffiliation', 'mail', 'displayName'];

let akamon: RunningAkamon;
let sp: ShibbolethSp;
let chromium: ChromiumBrowser;
let idpEntityId: string;

const { inWindow, startAtSp, arrived: arrivedAt } = spWindows(() => ({ akamon, sp, chromium }));
/** The SP's protected page once the browser has arrived there: what the SP kept of the assertion. */
const arrived = (page: ChromiumPage): Promise<ShibbolethPage> => arrivedAt(page, readShibbolethPage);

(unavailable ? describe.skip : describe)(`Akamon as the IdP of the Shibboleth SP (shibd and Apache mod_shib), in chromium${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  beforeAll(async () => {
    akamon = await startAkamon({ env: { AKAMON_REALM_SUFFIX: REALM } });
    idpEntityId = `${akamon.url}/saml/metadata`;
    const idpMetadataXml = await (await fetch(idpEntityId)).text();
    // One after the other: a chromium launched beside an SP that failed to start would be left running.
    sp = await startShibbolethSp({ idpMetadataXml });
    chromium = await launchChromium();
    const created = await adminApi(akamon, 'POST', '/clients', { protocol: 'saml', name: 'Library', spMetadata: sp.metadataXml, attributes: RELEASED });
    expect(created.status).toBe(201);
  }, 120_000);
  afterAll(async () => {
    try {
      await chromium?.close();
      await sp?.stop();
    } finally {
      await akamon?.close();
    }
  });

  test('password sign-in: the SP asks for no NameID format, gets a persistent one, and keeps the scoped eppn and affiliation, mail and displayName', async () => {
    const account = await akamon.createReadyAccount({ name: 'Taro Suzuki', affiliation: 'faculty', email: 'taro@example.ac.jp' });
    await inWindow(async (window) => {
      await startAtSp(window);
      const [{ root: request }] = sentTo(window, `${akamon.url}/saml/sso`);
      expect(textOf(request, NS.assertion, 'Issuer')).toBe(sp.entityId);
      expect(request.getElementsByTagNameNS(NS.protocol, 'NameIDPolicy')[0]?.getAttribute('Format') ?? null).toBeNull();
      await enterPassword(window.page, account);
      const shown = await arrived(window.page);

      const root = parseXml(window.responses.at(-1)!);
      expect([...root.getElementsByTagNameNS(NS.protocol, 'StatusCode')].map((code) => code.getAttribute('Value'))).toEqual([STATUS.success]);
      const nameId = root.getElementsByTagNameNS(NS.assertion, 'NameID')[0];
      expect(nameId.getAttribute('Format')).toBe(NAMEID_FORMAT.persistent);
      const eppn = `${account.commonId}@${REALM}`;
      expect(shown).toEqual({
        // REMOTE_USER is the first of eppn, subject-id, pairwise-id, persistent-id the SP has.
        remoteUser: eppn,
        idp: idpEntityId,
        authnContext: AUTHN_CONTEXT.passwordProtectedTransport,
        attributes: {
          eppn: [eppn],
          affiliation: [`faculty@${REALM}`, `employee@${REALM}`, `member@${REALM}`],
          mail: ['taro@example.ac.jp'],
          displayName: ['Taro Suzuki'],
          // The default policy keeps a persistent NameID only when its qualifiers name this IdP and this SP.
          'persistent-id': [`${idpEntityId}!${sp.entityId}!${nameId.textContent}`],
        },
      });
      expect(nameId.textContent).not.toContain(account.commonId);
    });
  }, 60_000);

  test('encrypted assertions: registered with encryptAssertions, the SP decrypts the EncryptedAssertion (AES-GCM to the key of its metadata) and keeps the attributes', async () => {
    expect((await adminApi(akamon, 'PATCH', `/clients/${encodeURIComponent(sp.entityId)}`, { encryptAssertions: true })).status).toBe(200);
    try {
      const account = await akamon.createReadyAccount({ email: 'sealed@example.ac.jp' });
      await inWindow(async (window) => {
        await startAtSp(window);
        await enterPassword(window.page, account);
        const shown = await arrived(window.page);
        const root = parseXml(window.responses.at(-1)!);
        expect(root.getElementsByTagNameNS(NS.assertion, 'Assertion')).toHaveLength(0);
        expect(root.getElementsByTagNameNS(NS.assertion, 'EncryptedAssertion')).toHaveLength(1);
        const methods = [...root.getElementsByTagNameNS(NS.xenc, 'EncryptionMethod')].map((method) => method.getAttribute('Algorithm'));
        expect(methods).toEqual(expect.arrayContaining([ALG.aes256Gcm, ALG.rsaOaepMgf1p]));
        expect(window.responses.at(-1)).not.toContain('sealed@example.ac.jp');
        expect([shown.remoteUser, shown.attributes.mail]).toEqual([`${account.commonId}@${REALM}`, ['sealed@example.ac.jp']]);
      });
    } finally {
      expect((await adminApi(akamon, 'PATCH', `/clients/${encodeURIComponent(sp.entityId)}`, { encryptAssertions: false })).status).toBe(200);
    }
  }, 60_000);

  test("single logout from the SP's Logout handler: its LogoutRequest ends the Akamon session and Akamon's LogoutResponse brings the browser back", async () => {
    const account = await akamon.createReadyAccount();
    await inWindow(async (window) => {
      await startAtSp(window);
      await enterPassword(window.page, account);
      const signedIn = await arrived(window.page);
      expect(await akamonSessions(akamon, account.id)).toHaveLength(1);

      await window.page.goto(sp.logoutUrl(`${sp.url}/`));
      await window.page.waitForURL(`${sp.url}/`);
      await window.page.getByText('Public page').waitFor();
      // The SP signs its LogoutRequest by default (Akamon takes none unsigned from an SP whose metadata has a certificate).
      const [{ root: request, sigAlg }] = sentTo(window, `${akamon.url}/saml/slo`);
      expect([request.localName, sigAlg]).toEqual(['LogoutRequest', ALG.rsaSha256]);
      expect(signedIn.attributes['persistent-id'][0].endsWith(`!${textOf(request, NS.assertion, 'NameID')}`)).toBe(true);
      const [{ root: response }] = sentTo(window, `${sp.url}/Shibboleth.sso/SLO/Redirect`);
      expect(response.getAttribute('InResponseTo')).toBe(request.getAttribute('ID'));
      expect(response.getElementsByTagNameNS(NS.protocol, 'StatusCode')[0].getAttribute('Value')).toBe(STATUS.success);
      expect(await akamonSessions(akamon, account.id)).toEqual([]);

      // Signed out at both: the protected page leads to Akamon's sign-in again.
      await window.page.goto(sp.protectedUrl);
      await window.page.getByRole('heading', { level: 1, name: 'Choose an account' }).waitFor();
    });
  }, 60_000);
});
