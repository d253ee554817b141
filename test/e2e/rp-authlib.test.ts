import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { freePort } from '../support/processes.ts';
import { recipeBlocks, registerFromRecipe } from '../support/recipes.ts';
import {
  appHome,
  codeFlowRequest,
  deniedAtApp,
  expectSignedOutAtAkamon,
  jsonOf,
  missingPackage,
  NavigatingBrowser,
  rpInitiatedLogout,
  signedInToApp,
  startRelyingParty,
} from '../support/relying-party.ts';
import type { RelyingPartyProcess } from '../support/relying-party.ts';

// docs/relying-parties/python-authlib.md: test/rp/authlib_app.py (Flask with Debian's authlib
// 1.2) registered with the recipe's CLI command, signing people in through Akamon over loopback.

const PYTHON = '/usr/bin/python3';
const DIST = '/usr/lib/python3/dist-packages';
const unavailable = missingPackage({
  [PYTHON]: 'python3',
  [`${DIST}/authlib/__init__.py`]: 'python3-authlib',
  [`${DIST}/flask/__init__.py`]: 'python3-flask',
  [`${DIST}/requests/__init__.py`]: 'python3-requests',
});
const APP = fileURLToPath(new URL('../rp/authlib_app.py', import.meta.url));

let akamon: RunningAkamon;
let app: RelyingPartyProcess;
let origin: string;
let clientId: string;

/** What the app's home answers this browser. */
const home = (browser: NavigatingBrowser) => appHome(browser, origin);

const signedIn = (account: { commonId: string; password: string }, options: { consent?: boolean } = {}) => signedInToApp(akamon, origin, account, options);

(unavailable ? describe.skip : describe)(`Python authlib with Flask${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  beforeAll(async () => {
    akamon = await startAkamon({ env: { AKAMON_BACKCHANNEL_ALLOW_PRIVATE: 'true' } });
    const port = await freePort();
    origin = `http://127.0.0.1:${port}`;
    const client = await registerFromRecipe(akamon, recipeBlocks('python-authlib.md'), { 'https://lab.example.ac.jp': origin });
    clientId = client.clientId;
    app = await startRelyingParty({
      name: 'the authlib app',
      command: PYTHON,
      args: [APP],
      url: `${origin}/`,
      env: { AKAMON_ISSUER: akamon.url, CLIENT_ID: client.clientId, CLIENT_SECRET: client.clientSecret, APP_URL: origin, SECRET_KEY: crypto.randomBytes(32).toString('hex') },
    });
  });
  afterAll(async () => {
    await app?.stop();
    await akamon?.close();
  });

  test('the sign-in asks Akamon for response_type=code with PKCE S256 and a nonce', async () => {
    const params = await codeFlowRequest(akamon, `${origin}/login`, { clientId, redirectUri: `${origin}/callback` });
    expect(Object.fromEntries(params)).toMatchObject({ nonce: expect.any(String), state: expect.any(String) });
  });

  test('sign-in of a third-party client: consent, the ID token and the userinfo claims; single sign-on without asking again', async () => {
    const account = await akamon.createReadyAccount({ name: 'Jiro Authlib', affiliation: 'student' });
    const browser = await signedIn(account, { consent: true });
    const me = await home(browser);
    // toMatchObject: the claim catalogue grows (issue 16, point 3).
    expect(me.userinfo).toMatchObject({
      sub: account.id,
      name: 'Jiro Authlib',
      preferred_username: account.commonId,
      affiliation: 'student',
      email: `${account.commonId}@mail.example.ac.jp`,
    });
    expect(me.id_token_claims).toMatchObject({ iss: akamon.url, aud: clientId, sub: account.id, amr: ['pwd'], acr: 'urn:akamon:acr:password', sid: expect.any(String) });

    // Akamon keeps the consent with its sign-in session: the app's next sign-in in this browser
    // (its own session lost) goes through single sign-on without a page.
    browser.cookies.delete('lab_session;/');
    const again = await browser.browse(`${origin}/login`);
    expect(again.url).toBe(`${origin}/`);
    expect(jsonOf(again)).toMatchObject({ signed_in: true, userinfo: { sub: account.id } });
  });

  test('refresh: a new access token that userinfo accepts, and the spent refresh token is refused', async () => {
    const account = await akamon.createReadyAccount();
    const browser = await signedIn(account, { consent: true });
    const cookie = (name: string) => [...browser.cookies.values()].find((c) => c.name === name)!.value;
    const before = cookie('lab_session');

    const refreshed = await browser.at(origin).visit(`${origin}/refresh`, { method: 'POST' });
    expect(refreshed.status).toBe(200);
    expect(jsonOf(refreshed)).toMatchObject({ refreshed: true, userinfo: { sub: account.id, preferred_username: account.commonId } });

    // The session from before the refresh holds the old refresh token: Akamon refuses it, the app signs the person out.
    const stale = new NavigatingBrowser(origin, new Map([['lab_session;/', { name: 'lab_session', value: before, path: '/' }]]));
    const reused = await stale.visit(`${origin}/refresh`, { method: 'POST' });
    expect(reused.status).toBe(401);
    expect(jsonOf(reused).error).toBe('invalid_grant');
  });

  test('RP-initiated logout ends the Akamon session and returns to the registered URI with the state', async () => {
    const account = await akamon.createReadyAccount();
    const browser = await signedIn(account, { consent: true });

    const { done } = await rpInitiatedLogout(akamon, browser, `${origin}/logout`, 'Lab portal');
    expect(done.url.startsWith(`${origin}/signed-out?state=`)).toBe(true);
    expect(jsonOf(done)).toEqual({ signed_out: true });

    expect(await home(browser)).toEqual({ signed_in: false });
    await expectSignedOutAtAkamon(akamon, browser, account.id, `${origin}/login`);
  });

  test("back-channel logout: signing out at Akamon ends the app's session; a forged logout token is refused", async () => {
    const account = await akamon.createReadyAccount();
    const browser = await signedIn(account, { consent: true });
    const forged = await fetch(`${origin}/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: 'eyJhbGciOiJub25lIn0.eyJzaWQiOiJ4In0.' }) });
    expect(forged.status).toBe(400);
    expect((await home(browser)).signed_in).toBe(true);

    // Signed out at Akamon, not through the app: only the logout token can tell it.
    const done = await browser.confirmSignOut(await browser.browse(`${akamon.url}/session/end`));
    expect(done.url).toBe(`${akamon.url}/session/end/success`);
    expect(await home(browser)).toEqual({ signed_in: false });
  });

  test('access_denied from Akamon reaches the app as an error it can show', async () => {
    const { browser, page } = await deniedAtApp(akamon, clientId, origin);
    expect(jsonOf(page)).toEqual({ error: 'access_denied', error_description: 'the account is not allowed to use this system (account_denied)' });
    expect(await home(browser)).toEqual({ signed_in: false });
  });
});
