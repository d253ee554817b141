import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { chooseMethod, enterCredentials, secretOn, startAuthorization, tokenRequest } from '../support/flows.ts';
import { generate } from 'otplib';
import { shiftableClock } from '../support/clock.ts';
import { upstreamIdv } from '../support/idv.ts';
import { sql } from 'kysely';
import * as oidcClient from 'openid-client';
import { discover } from '../support/openid-rp.ts';

/**
 * Found by an attack review of the side paths (the paths besides the main sign-in that hand out
 * tokens or take secrets): each test states a promise and tries to break it. Each failed before its
 * fix: the password grant took initial, reissued and expired passwords; app passwords outlived a
 * reset; a stale session (a borrowed cookie) could link an ID card, change the recovery address,
 * make an app password, or set up a first second factor through single sign-on.
 */
const clock = shiftableClock();
const upstream = upstreamIdv();
let akamon: RunningAkamon;
let mail: Awaited<ReturnType<RunningAkamon['createClient']>>;

beforeAll(async () => {
  akamon = await startAkamon({ clock, envFor: upstream.envFor, env: { AKAMON_TRUST_PROXY: 'true' } });
  mail = await akamon.createClient({ name: 'Mail server', legacyPassword: true, redirectUris: ['http://127.0.0.1:9/mail'] });
});
afterAll(async () => {
  await akamon.close();
  await upstream.close();
});
afterEach(() => {
  clock.offset = 0;
});

let addresses = 0;
/** A browser at an address of its own (Akamon trusts the proxy), so no test spends another's budgets. */
function newBrowser(): Browser {
  const browser = new Browser(akamon.url);
  addresses += 1;
  browser.extraHeaders = { 'x-forwarded-for': `10.77.${Math.floor(addresses / 250)}.${(addresses % 250) + 1}` };
  return browser;
}

const grant = (username: string, password: string) => tokenRequest(akamon, mail, { grant_type: 'password', username, password, scope: 'openid' });

describe('the password grant honours what the sign-in form demands', () => {
  // README: "The first sign-in goes through a password change before the system is reached."
  test('an office-issued initial password (must be changed) does not reach a system through the password grant', async () => {
    const account = await akamon.createAccount();
    const response = await grant(account.commonId, account.password);
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('invalid_grant');
    // The same answer as a wrong password; the log tells operators the password was right.
    const [logged] = await akamon.deps.signinLog.list({ accountId: account.id, limit: 1 });
    expect([logged?.result, logged?.reason]).toEqual(['failure', 'password_change_required']);
  });

  test('a password reissued by the help desk does not reach a system through the password grant before it is changed', async () => {
    const account = await akamon.createReadyAccount();
    const { initialPassword } = await akamon.deps.accountService.reissuePassword(account.commonId, await akamon.deps.accountService.initialPassword());
    const response = await grant(account.commonId, initialPassword);
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('invalid_grant');
    // The sign-in form, by contrast, sends the same password to the change step first.
    const browser = newBrowser();
    const started = await browser.visit(`${akamon.url}/account/login`);
    const next = await enterCredentials(browser, started, account.commonId, initialPassword);
    expect(next.html).toMatch(/name="new"/);
  });

  // README: without MFA a password expires after 397 days, and "after expiry the sign-in goes
  // through a password change".
  test('an expired password does not reach a system through the password grant', async () => {
    const account = await akamon.createReadyAccount();
    clock.offset = 398 * 24 * 3600 * 1000;
    const response = await grant(account.commonId, account.password);
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('invalid_grant');
  });
});

describe('ending everything ends the credentials an intruder made', () => {
  // README: a reset ends "every session and refresh token"; an app password made by whoever held
  // the account is a standing credential of the same reach at --legacy-password clients.
  test('an app password made before a password reset no longer signs in through the password grant', async () => {
    const account = await akamon.createReadyAccount();
    const { secret } = await akamon.deps.appPasswords.create(account.id, 'Intruder');
    expect((await grant(account.commonId, secret)).status).toBe(200);
    await akamon.deps.accountService.resetPassword(account.id, 'Recovered-Password-42', 'Recovered-Password-42');
    const after = await grant(account.commonId, secret);
    expect(after.status).toBe(400);
  });
});

describe('a borrowed account-home session (no MFA, signed in long ago) cannot plant a way back in', () => {
  /** The account home of a ready account without MFA, signed in; then `minutes` pass. */
  async function staleHome(path: string, minutes: number) {
    const account = await akamon.createReadyAccount();
    const browser = newBrowser();
    const page = await enterCredentials(browser, await browser.visit(`${akamon.url}${path}`), account.commonId, account.password);
    expect(new URL(page.url).pathname).toBe(path);
    clock.offset = minutes * 60 * 1000;
    const post = (action: string, fields: Record<string, string> = {}) =>
      browser.request(`${akamon.url}${action}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: /name="_csrf" value="([^"]+)"/.exec(page.html)![1], ...fields }),
      });
    return { account, browser, page, post };
  }

  // Removing the link needs the password again after ten minutes (identity-verification.test.ts);
  // making one, which lets whoever holds the card reset the password later, must need no less.
  test('linking an ID card asks for the password again, as removing the link does', async () => {
    const { account, post } = await staleHome('/account/idv', 11);
    const response = await post('/account/idv/link');
    expect([response.status, response.headers.get('location')]).toEqual([303, '/account/login?fresh=password&back=%2Faccount%2Fidv']);
    expect(await akamon.deps.idv.linkOf(account.id)).toBeUndefined();
  });

  // A first sign-in method needs the password within ten minutes "so that a session alone (a
  // borrowed or stolen cookie) cannot attach a factor of someone else's" (home-session.ts); the
  // recovery address decides where every password reset goes.
  test('changing the recovery address asks for the password again', async () => {
    const { account, post } = await staleHome('/account/security', 11);
    const email = `intruder-${account.commonId}@example.com`;
    const response = await post('/account/security/email', { email });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toMatch(/^\/account\/login\?fresh=password/);
    expect(akamon.mails.some((m) => m.to.includes(email))).toBe(false);
  });

  // An app password is a standing credential at --legacy-password clients (and outlives a reset, above).
  test('creating an app password asks for the password again', async () => {
    const { account, post } = await staleHome('/account', 11);
    const response = await post('/account/app-passwords', { name: 'Intruder' });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toMatch(/^\/account\/login\?fresh=password/);
    expect(await akamon.deps.appPasswords.list(account.id)).toEqual([]);
  });
});

describe('a device code approved before everything of the account ended', () => {
  // README: a password reset ends every session, grant and refresh token; a device that was
  // approved a moment before and has not polled yet must not get tokens afterwards.
  test('gets no tokens at its next poll after a password reset', async () => {
    const hpc = await akamon.createClient({ name: 'HPC login', redirectUris: [], deviceFlow: true, public: true, firstParty: true });
    const device = await oidcClient.initiateDeviceAuthorization(await discover(akamon, hpc), { scope: 'openid offline_access' });
    const account = await akamon.createReadyAccount();
    const browser = newBrowser();
    const form = await browser.visit('/device');
    const confirm = await browser.submit(form, /\/device$/, { user_code: device.user_code });
    const signIn = await browser.submit(confirm, /\/device$/, { confirm: 'yes' });
    expect((await enterCredentials(browser, signIn, account.commonId, account.password)).html).toContain('You can return to your device');
    await akamon.deps.accountService.resetPassword(account.id, 'Recovered-Password-42', 'Recovered-Password-42');
    const polled = await tokenRequest(akamon, { clientId: hpc.clientId, clientSecret: null }, { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code });
    expect(polled.status).toBe(400);
    expect(polled.body.access_token).toBeUndefined();
  });
});

describe('a session alone never attaches a first second factor', () => {
  // mfa-enrollment.ts: "The session alone never suffices: whoever holds a cookie could attach a
  // factor of their own" (the account home's "Add a sign-in method" needs a password within ten
  // minutes). The same set-up is reached through single sign-on wherever MFA is demanded.
  test('an SSO session signed in two hours ago is asked for the password before the first factor is set up', async () => {
    const portal = await akamon.createClient({ name: 'Portal', redirectUris: ['http://127.0.0.1:9/portal'] });
    const account = await akamon.createReadyAccount();
    const browser = newBrowser();
    const started = await startAuthorization(browser, akamon, portal);
    expect(new URL((await enterCredentials(browser, started.page, account.commonId, account.password)).url).searchParams.get('code')).toBeTruthy();
    // Two hours go by (the session lives eight): its sign-in is moved back as if they had.
    await sql`update oidc_payload set payload = payload || jsonb_build_object('loginTs', (payload->>'loginTs')::bigint - 7200)
              where model = 'Session' and account_id = ${account.id}`.execute(akamon.deps.database.db);
    const stepUp = await startAuthorization(browser, akamon, portal, { acr_values: 'urn:akamon:acr:mfa' });
    if (!/name="password"/.test(stepUp.page.html)) {
      // The cookie's holder sets up an authenticator app of their own on the account.
      const app = await chooseMethod(browser, stepUp.page);
      await browser.submit(app, /\/totp$/, { code: await generate({ secret: secretOn(app) }) });
    }
    expect(await akamon.deps.mfa.factors(account.id)).toEqual([]);
    expect(stepUp.page.html).toMatch(/name="password"/);
    // The password shown, the person goes on to set up the first factor.
    const setUp = await browser.submit(stepUp.page, /\/password$/, { password: account.password });
    const app = await chooseMethod(browser, setUp);
    await browser.submit(app, /\/totp$/, { code: await generate({ secret: secretOn(app) }) });
    expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(1);
  });
});
