import { describe, expect, test } from '@jest/globals';
import type { Element } from '@xmldom/xmldom';
import { generate } from 'otplib';
import type { Page as ChromiumPage } from 'playwright-core';
import { AUTHN_CONTEXT, NAMEID_FORMAT, NS, STATUS } from '../../src/saml/constants.ts';
import { adminApi, type RunningAkamon } from '../support/akamon.ts';
import { authorizeUrl, pkce } from '../support/browser.ts';
import { CHROMIUM } from '../support/chromium.ts';
import { redeem } from '../support/flows.ts';
import { MELLON_PACKAGES, readMellonPage, startMellonSp, type MellonPage, type MellonSp } from '../support/mellon-sp.ts';
import { missingPackage } from '../support/relying-party.ts';
import { type BrowserWindow, enterPassword, parseXml, sentTo, spWorldForFile, textOf } from '../support/sp-window.ts';

// Issue 17, "how it is shown": Akamon as the identity provider of a SAML SP that is not its own
// code, Debian's Apache with mod_auth_mellon (test/support/mellon-sp.ts), each sign-in walked by a
// real browser (Debian's chromium through playwright-core). One Akamon and one Apache for the file:
// the cases that need the SP flagged (MFA, an access rule, encryption) change its registration
// through the admin API, as an operator would with `akamon sp update`.

const unavailable = missingPackage({ ...MELLON_PACKAGES, [CHROMIUM]: 'chromium' });

const REALM = 'utac.example.ac.jp';
const RELEASED = ['eduPersonPrincipalName', 'mail', 'displayName', 'jaDisplayName', 'eduPersonAffiliation'];
/** The settings the cases change, as registered: what each case starts from. */
const REGISTERED = { requireMfa: false, allowedAffiliations: null, encryptAssertions: false };
const NEW_PASSWORD = 'Mellon-Gate-2026x';

let akamon: RunningAkamon;
let sp: MellonSp;

/** The SP's registration with `settings` over the registered ones. */
async function configure(settings: Partial<Record<keyof typeof REGISTERED, unknown>> = {}) {
  const updated = await adminApi(akamon, 'PATCH', `/clients/${encodeURIComponent(sp.entityId)}`, { ...REGISTERED, ...settings });
  expect(updated.status).toBe(200);
}

/** The messages of a window that went to `endpoint` over HTTP-Redirect, parsed. */
const roots = (window: BrowserWindow, endpoint: string) => sentTo(window, endpoint).map((m) => m.root);

/** The Response Akamon posted last, parsed; its status code, and its assertion when not encrypted. */
function lastResponse(window: BrowserWindow) {
  expect(window.responses.length).toBeGreaterThan(0);
  const root = parseXml(window.responses.at(-1)!);
  const status = root.getElementsByTagNameNS(NS.protocol, 'StatusCode');
  return { root, status: [...status].map((code) => code.getAttribute('Value')), assertion: root.getElementsByTagNameNS(NS.assertion, 'Assertion')[0] as Element | undefined };
}

/** An account with an authenticator app, enrolled with the code of the current time step; answers a code for the next one. */
async function withAuthenticatorApp(account: { id: string }) {
  const now = () => Math.floor(Date.now() / 1000);
  const app = akamon.deps.mfa.pendingTotp();
  expect((await akamon.deps.mfa.confirmTotp(account.id, app.sealed, await generate({ secret: app.secret, epoch: now() }), 'Phone app')).ok).toBe(true);
  return () => generate({ secret: app.secret, epoch: now() + 30 });
}

(unavailable ? describe.skip : describe)(`Akamon as the IdP of Apache httpd with mod_auth_mellon, in chromium${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const world = spWorldForFile({ realm: REALM, name: 'Mellon Wiki', attributes: RELEASED, startSp: (idpMetadataXml) => startMellonSp({ idpMetadataXml }) }, (started) => ({ akamon, sp } = started));
  const { inWindow, startAtSp, signInAndOut } = world;
  /** The SP's protected page once the browser has arrived there: what mellon received. */
  const arrived = (page: ChromiumPage): Promise<MellonPage> => world.arrived(page, readMellonPage);

  test('password sign-in: mellon asks for a transient NameID and gets one; the page shows it and the released attributes', async () => {
    await configure();
    const account = await akamon.createReadyAccount({ name: 'Hanako Yamada', affiliation: 'faculty', email: 'hanako@example.ac.jp', profile: { familyNameJa: '山田', givenNameJa: '花子' } });
    await inWindow(async (window) => {
      await startAtSp(window);
      const [request] = roots(window, `${akamon.url}/saml/sso`);
      expect(textOf(request, NS.assertion, 'Issuer')).toBe(sp.entityId);
      expect(request.getElementsByTagNameNS(NS.protocol, 'NameIDPolicy')[0]?.getAttribute('Format')).toBe(NAMEID_FORMAT.transient);
      await enterPassword(window.page, account);
      const shown = await arrived(window.page);

      const { status, assertion } = lastResponse(window);
      expect(status).toEqual([STATUS.success]);
      const nameId = assertion!.getElementsByTagNameNS(NS.assertion, 'NameID')[0];
      expect(nameId.getAttribute('Format')).toBe(NAMEID_FORMAT.transient);
      expect(textOf(assertion!, NS.assertion, 'AuthnContextClassRef')).toBe(AUTHN_CONTEXT.passwordProtectedTransport);
      expect(shown).toEqual({
        remoteUser: nameId.textContent,
        nameId: nameId.textContent,
        idp: `${akamon.url}/saml/metadata`,
        attributes: {
          eduPersonPrincipalName: [`${account.commonId}@${REALM}`],
          mail: ['hanako@example.ac.jp'],
          displayName: ['Hanako Yamada'],
          jaDisplayName: ['山田 花子'],
          eduPersonAffiliation: ['faculty', 'employee', 'member'],
        },
      });
      // Transient: nothing in it to recognise the person by.
      expect(shown.nameId).not.toContain(account.commonId);
      expect(window.protectedServed).toBe(1);
    });
  }, 60_000);

  test('forced password change: an initial password is replaced first, then the browser arrives at the SP', async () => {
    await configure();
    const account = await akamon.createAccount();
    await inWindow(async (window) => {
      await startAtSp(window);
      await enterPassword(window.page, account);
      const page = window.page;
      await page.getByRole('heading', { level: 1, name: 'Choose a new password' }).waitFor();
      expect(window.responses).toEqual([]);
      await page.getByLabel('Current password').fill(account.password);
      await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
      await page.getByLabel('Confirm new password').fill(NEW_PASSWORD);
      await page.getByRole('button', { name: 'Change password and continue' }).click();
      expect((await arrived(page)).attributes.eduPersonPrincipalName).toEqual([`${account.commonId}@${REALM}`]);
    });
    expect((await akamon.deps.accounts.findById(account.id))?.must_change_password).toBe(false);
  }, 60_000);

  test('an SP flagged requireMfa: a person with an authenticator app gives its code before arriving; one without MFA is led to set it up', async () => {
    await configure({ requireMfa: true });
    const enrolled = await akamon.createReadyAccount();
    const nextCode = await withAuthenticatorApp(enrolled);
    await inWindow(async (window) => {
      await startAtSp(window);
      await enterPassword(window.page, enrolled);
      await window.page.getByRole('heading', { level: 1, name: 'Verify your identity' }).waitFor();
      expect(window.responses).toEqual([]);
      await window.page.getByLabel('6-digit code').fill(await nextCode());
      await window.page.getByRole('button', { name: 'Verify' }).click();
      expect((await arrived(window.page)).attributes.eduPersonPrincipalName).toEqual([`${enrolled.commonId}@${REALM}`]);
      expect(textOf(lastResponse(window).assertion!, NS.assertion, 'AuthnContextClassRef')).toBe(AUTHN_CONTEXT.mfa);
    });

    const bare = await akamon.createReadyAccount();
    await inWindow(async (window) => {
      await startAtSp(window);
      await enterPassword(window.page, bare);
      await window.page.getByRole('heading', { level: 1, name: 'More information required' }).waitFor();
      expect(window.page.url().startsWith(`${akamon.url}/interaction/`)).toBe(true);
      expect([window.responses, window.protectedServed]).toEqual([[], 0]);
    });
  }, 60_000);

  test('53003: a student at a staff-only SP sees the refusal page; its way back brings mellon a signed RequestDenied, not the page', async () => {
    await configure({ allowedAffiliations: ['staff'] });
    const student = await akamon.createReadyAccount({ affiliation: 'student' });
    await inWindow(async (window) => {
      await startAtSp(window);
      await enterPassword(window.page, student);
      await window.page.getByText('Error code: 53003').waitFor();
      expect(window.responses).toEqual([]);
      const answered = window.page.waitForResponse((response) => response.url() === sp.acsUrl);
      await window.page.getByRole('button', { name: 'Return to Mellon Wiki' }).click();
      // mellon answers the status with a 401 page of its own, at its consumer service.
      expect((await answered).status()).toBe(401);
      const { root, status, assertion } = lastResponse(window);
      expect(status).toEqual([STATUS.responder, STATUS.requestDenied]);
      expect(assertion).toBeUndefined();
      expect(root.getElementsByTagNameNS(NS.assertion, 'EncryptedAssertion')).toHaveLength(0);
      expect(root.getElementsByTagNameNS(NS.dsig, 'Signature')).toHaveLength(1);
      expect(window.protectedServed).toBe(0);
      // mellon (lasso) read the status, so it took the signed response as Akamon's.
      expect(sp.output()).toContain(`StatusCode1="${STATUS.responder}", StatusCode2="${STATUS.requestDenied}"`);
    });
  }, 60_000);

  test('single sign-on across protocols in one browser: SAML first, then OIDC without a password; and the other way round', async () => {
    await configure();
    const account = await akamon.createReadyAccount();
    // The client's redirect URI is the SP's public page: any page on loopback does, the code is redeemed here.
    const client = await akamon.createClient({ name: 'Portal', redirectUris: [`${sp.url}/`] });
    /** The OIDC code flow in this window, up to the client's redirect URI; answers the ID token's subject. */
    const oidcSignIn = async (window: BrowserWindow, signIn: boolean) => {
      const { verifier, challenge } = pkce();
      await window.page.goto(authorizeUrl(akamon.url, { client_id: client.clientId, redirect_uri: client.redirectUri, code_challenge: challenge, code_challenge_method: 'S256' }));
      if (signIn) await enterPassword(window.page, account);
      await window.page.waitForURL((url) => url.href.startsWith(`${client.redirectUri}?`));
      const tokens = await redeem(akamon, client, new URL(window.page.url()).searchParams.get('code')!, verifier);
      expect(tokens.status).toBe(200);
      return JSON.parse(Buffer.from(tokens.body.id_token.split('.')[1], 'base64url').toString()).sub as string;
    };

    await inWindow(async (window) => {
      await startAtSp(window);
      await enterPassword(window.page, account);
      await arrived(window.page);
      expect(await oidcSignIn(window, false)).toBe(account.id);
      expect(window.passwordsSent).toBe(1);
    });

    await inWindow(async (window) => {
      expect(await oidcSignIn(window, true)).toBe(account.id);
      await window.page.goto(sp.protectedUrl);
      expect((await arrived(window.page)).attributes.eduPersonPrincipalName).toEqual([`${account.commonId}@${REALM}`]);
      expect(window.passwordsSent).toBe(1);
    });
  }, 60_000);

  test("encrypted assertions: registered with encryptAssertions, the SP gets an EncryptedAssertion (to mellon's certificate) and still arrives", async () => {
    await configure({ encryptAssertions: true });
    const account = await akamon.createReadyAccount({ email: 'encrypted@example.ac.jp' });
    await inWindow(async (window) => {
      await startAtSp(window);
      await enterPassword(window.page, account);
      const shown = await arrived(window.page);
      const { root, status, assertion } = lastResponse(window);
      expect(status).toEqual([STATUS.success]);
      expect(assertion).toBeUndefined();
      expect(root.getElementsByTagNameNS(NS.assertion, 'EncryptedAssertion')).toHaveLength(1);
      expect(window.responses.at(-1)).not.toContain('encrypted@example.ac.jp');
      expect(shown.attributes.mail).toEqual(['encrypted@example.ac.jp']);
      expect(shown.remoteUser).toBe(shown.nameId);
      expect(shown.nameId).not.toBe('');
    });
  }, 60_000);

  test("single logout from mellon's logout URL: a LogoutRequest ends the Akamon session, the LogoutResponse brings the browser back; the next visit asks for the password", async () => {
    await configure();
    const account = await akamon.createReadyAccount();
    await inWindow(async (window) => {
      // mellon goes on to ReturnTo only once lasso has verified the LogoutResponse (a 400 otherwise).
      const { signedIn, request, response } = await signInAndOut(window, account, readMellonPage, `${sp.url}/mellon/logout`);
      expect([request.localName, textOf(request, NS.assertion, 'NameID')]).toEqual(['LogoutRequest', signedIn.nameId]);
      expect(response.localName).toBe('LogoutResponse');

      // Neither mellon nor Akamon has the browser signed in any more: the protected page leads to
      // Akamon's account picker (the device remembers the account, no longer as signed in), then the password.
      const page = window.page;
      await page.goto(sp.protectedUrl);
      await page.getByRole('heading', { level: 1, name: 'Choose an account' }).waitFor();
      const remembered = page.getByRole('button', { name: new RegExp(account.commonId) });
      await expect(remembered.textContent()).resolves.not.toContain('Signed in');
      await remembered.click();
      await page.getByLabel('Password', { exact: true }).fill(account.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      expect((await arrived(page)).nameId).not.toBe(signedIn.nameId);
      expect(window.passwordsSent).toBe(2);
    });
  }, 60_000);
});
