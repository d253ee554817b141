import { describe, expect, test } from '@jest/globals';
import type { Page as ChromiumPage } from 'playwright-core';
import { ALG, AUTHN_CONTEXT, NAMEID_FORMAT, NS, STATUS } from '../../src/saml/constants.ts';
import { adminApi, type RunningAkamon } from '../support/akamon.ts';
import type { ApacheSp } from '../support/apache-sp.ts';
import { CHROMIUM } from '../support/chromium.ts';
import { missingPackage } from '../support/relying-party.ts';
import { enterPassword, parseXml, sentTo, spWorldForFile, textOf } from '../support/sp-window.ts';
import { readShibbolethPage, SHIBBOLETH_PACKAGES, startShibbolethSp, type ShibbolethPage } from '../support/shibboleth-sp.ts';

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
let sp: ApacheSp;
let idpEntityId: string;

(unavailable ? describe.skip : describe)(`Akamon as the IdP of the Shibboleth SP (shibd and Apache mod_shib), in chromium${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const world = spWorldForFile({ realm: REALM, name: 'Library', attributes: RELEASED, startSp: (idpMetadataXml) => startShibbolethSp({ idpMetadataXml }) }, (started) => {
    ({ akamon, sp } = started);
    idpEntityId = `${akamon.url}/saml/metadata`;
  });
  const { inWindow, startAtSp, signInAndOut } = world;
  /** The SP's protected page once the browser has arrived there: what the SP kept of the assertion. */
  const arrived = (page: ChromiumPage): Promise<ShibbolethPage> => world.arrived(page, readShibbolethPage);

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
      const { signedIn, request, sigAlg } = await signInAndOut(window, account, readShibbolethPage, `${sp.url}/Shibboleth.sso/SLO/Redirect`);
      // The SP signs its LogoutRequest by default (Akamon takes none unsigned from an SP whose metadata has a certificate).
      expect([request.localName, sigAlg]).toEqual(['LogoutRequest', ALG.rsaSha256]);
      expect(signedIn.attributes['persistent-id'][0].endsWith(`!${textOf(request, NS.assertion, 'NameID')}`)).toBe(true);

      // Signed out at both: the protected page leads to Akamon's sign-in again.
      await window.page.goto(sp.protectedUrl);
      await window.page.getByRole('heading', { level: 1, name: 'Choose an account' }).waitFor();
    });
  }, 60_000);
});
