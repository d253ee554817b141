import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { freePort } from '../support/processes.ts';
import { recipeBlocks, registerFromRecipe } from '../support/recipes.ts';
import { appHome, codeFlowRequest, deniedAtApp, expectSignedOutAtAkamon, jsonOf, NavigatingBrowser, rpInitiatedLogout, signedInToApp, startRelyingParty } from '../support/relying-party.ts';
import type { RelyingPartyProcess } from '../support/relying-party.ts';

// docs/relying-parties/express-openid-connect.md: test/rp/express-app.ts (Express with
// express-openid-connect 3.4, npm dev dependencies) registered with the recipe's CLI command, run
// as its own Node process, signing people in through Akamon over loopback.

const APP = fileURLToPath(new URL('../rp/express-app.ts', import.meta.url));

let akamon: RunningAkamon;
const apps: RelyingPartyProcess[] = [];
let origin: string;
let clientId: string;

/** The app on `port`, registered as `client`; `overrides` (JSON) replace its settings. */
async function startApp(port: number, client: { clientId: string; clientSecret: string }, overrides: object = {}): Promise<string> {
  const url = `http://127.0.0.1:${port}`;
  apps.push(
    await startRelyingParty({
      name: 'the Express app',
      command: process.execPath,
      args: [APP],
      url: `${url}/`,
      env: {
        AKAMON_ISSUER: akamon.url,
        CLIENT_ID: client.clientId,
        CLIENT_SECRET: client.clientSecret,
        APP_URL: url,
        SESSION_SECRET: crypto.randomBytes(32).toString('hex'),
        EXPRESS_OIDC_OVERRIDES: JSON.stringify(overrides),
      },
    }),
  );
  return url;
}

const home = (browser: NavigatingBrowser) => appHome(browser, origin);

const signedIn = (account: { commonId: string; password: string }) => signedInToApp(akamon, origin, account);

describe('Express with express-openid-connect', () => {
  beforeAll(async () => {
    akamon = await startAkamon({ env: { AKAMON_BACKCHANNEL_ALLOW_PRIVATE: 'true' } });
    const port = await freePort();
    const client = await registerFromRecipe(akamon, recipeBlocks('express-openid-connect.md'), { 'https://portal.example.ac.jp': `http://127.0.0.1:${port}` });
    clientId = client.clientId;
    origin = await startApp(port, client);
  });
  afterAll(async () => {
    for (const app of apps) await app.stop();
    await akamon?.close();
  });

  test('the sign-in asks Akamon for response_type=code with PKCE S256', async () => {
    const params = await codeFlowRequest(akamon, `${origin}/login`, { clientId, redirectUri: `${origin}/callback` });
    expect(params.get('response_mode')).toBeNull();
  });

  test('sign-in: the ID token claims, then the userinfo claims at /profile', async () => {
    const account = await akamon.createReadyAccount({ name: 'Saburo Express', affiliation: 'staff' });
    const browser = await signedIn(account);
    expect((await home(browser)).id_token_claims).toMatchObject({ iss: akamon.url, aud: clientId, sub: account.id, amr: ['pwd'], sid: expect.any(String) });
    const profile = await browser.browse(`${origin}/profile`);
    expect(profile.status).toBe(200);
    expect(jsonOf(profile)).toMatchObject({ sub: account.id, name: 'Saburo Express', preferred_username: account.commonId, affiliation: 'staff', email: `${account.commonId}@mail.example.ac.jp` });
  });

  test('refresh: a new access token, kept in the session', async () => {
    const account = await akamon.createReadyAccount();
    const browser = await signedIn(account);
    const refreshed = await browser.at(origin).visit(`${origin}/refresh`, { method: 'POST' });
    expect(refreshed.status).toBe(200);
    expect(jsonOf(refreshed)).toEqual({ refreshed: true });
    // The session holds the rotated refresh token: a second refresh works too.
    expect(jsonOf(await browser.at(origin).visit(`${origin}/refresh`, { method: 'POST' }))).toEqual({ refreshed: true });
  });

  test('RP-initiated logout (idpLogout) ends the Akamon session and returns to the registered URI', async () => {
    const account = await akamon.createReadyAccount();
    const browser = await signedIn(account);
    const { done } = await rpInitiatedLogout(akamon, browser, `${origin}/logout`, 'Portal');
    expect(done.url).toBe(`${origin}/signed-out`);

    expect(await home(browser)).toEqual({ signed_in: false });
    await expectSignedOutAtAkamon(akamon, browser, account.id, `${origin}/login`);
  });

  test("back-channel logout: signing out at Akamon ends the app's session", async () => {
    const account = await akamon.createReadyAccount();
    const browser = await signedIn(account);
    const done = await browser.confirmSignOut(await browser.browse(`${akamon.url}/session/end`));
    expect(done.url).toBe(`${akamon.url}/session/end/success`);
    // The app's cookie session is still in the browser: only the logout mark ends it.
    expect([...browser.cookies.values()].some((c) => c.name === 'appSession')).toBe(true);
    expect(await home(browser)).toEqual({ signed_in: false });
  });

  test('access_denied from Akamon reaches the app as an error it can show', async () => {
    const { page } = await deniedAtApp(akamon, clientId, origin);
    expect(jsonOf(page)).toMatchObject({ error: 'access_denied', error_description: 'the account is not allowed to use this system (account_denied)' });
  });

  test("the library's default response_type (id_token) is refused by Akamon: the recipe's response_type=code is needed", async () => {
    const port = await freePort();
    const client = await akamon.createClient({ name: 'Portal with defaults', redirectUris: [`http://127.0.0.1:${port}/callback`] });
    const withDefaults = await startApp(port, { clientId: client.clientId, clientSecret: client.clientSecret! }, { authorizationParams: { scope: 'openid profile email' } });
    const response = await new NavigatingBrowser(withDefaults).request(`${withDefaults}/login`);
    expect(response.status).toBe(302);
    const location = new URL(response.headers.get('location')!);
    expect(location.searchParams.get('response_type')).toBe('id_token');
    expect(location.searchParams.get('response_mode')).toBe('form_post');
    const refused = await fetch(location, { redirect: 'manual' });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('unsupported_response_type');
  });
});
