import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { decode, type Page } from '../support/browser.ts';
import { freePort } from '../support/processes.ts';
import { block, fill, recipeBlocks, registerFromRecipe } from '../support/recipes.ts';
import {
  APACHE_PACKAGES,
  codeFlowRequest,
  denyAccount,
  expectSignedOutAtAkamon,
  missingPackage,
  NavigatingBrowser,
  type RelyingPartyProcess,
  rpInitiatedLogout,
  startApache,
} from '../support/relying-party.ts';

// docs/relying-parties/apache-mod-auth-openidc.md as written: Debian's Apache 2.4 with
// mod_auth_openidc 2.4.12 in front of a protected location, registered with the CLI command of
// the recipe, signing people in through Akamon over loopback.

const unavailable = missingPackage(APACHE_PACKAGES);
const recipe = recipeBlocks('apache-mod-auth-openidc.md');

let akamon: RunningAkamon;
let apache: RelyingPartyProcess;
let site: string;
let clientId: string;

/** The recipe's example values, for a site at `origin` registered as `client`. */
const examples = (origin: string, client: { clientId: string; clientSecret: string }) => ({
  'https://id.example.ac.jp': akamon.url,
  'https://wiki.example.ac.jp': origin,
  'wiki-3f9c2a7b1d04': client.clientId,
  'mQ0cWx5-the-secret-from-client-create': client.clientSecret,
  'change-me-to-a-long-random-string': crypto.randomBytes(32).toString('base64url'),
});

/** Apache on `port` as the recipe configures it for `client`, with or without its iss rewrite, and the check page. */
function startSite(port: number, client: { clientId: string; clientSecret: string }, issRewrite: boolean) {
  return startApache({
    port,
    site: (documentRoot) =>
      [
        fill(block(recipe, 'site'), examples(`http://127.0.0.1:${port}`, client)),
        ...(issRewrite ? [block(recipe, 'iss')] : []),
        fill(block(recipe, 'check-config'), { '/var/www/html': documentRoot }),
      ].join('\n'),
    pages: { 'index.html': '<p>Public page</p>\n', 'protected/index.shtml': block(recipe, 'check-page') },
  });
}

/** The claims on the check page, by name. */
function claimsOn(page: Page): Record<string, string> {
  return Object.fromEntries([...page.html.matchAll(/<dt>([^<]+)<\/dt><dd>([^<]*)<\/dd>/g)].map((m) => [m[1], decode(m[2])]));
}

/** A refusal at a site where the account is denied: the error response carries iss (RFC 9207), the cause of mod_auth_openidc's misleading page. */
async function refusedAt(origin: string, account: { commonId: string; password: string }): Promise<Page> {
  const { response, page } = await new NavigatingBrowser(akamon.url).refused(`${origin}/protected/`, account);
  expect(`${response.origin}${response.pathname}`).toBe(`${origin}/protected/redirect_uri`);
  expect(Object.fromEntries(response.searchParams)).toMatchObject({ error: 'access_denied', iss: akamon.url });
  return page;
}

(unavailable ? describe.skip : describe)(`Apache httpd with mod_auth_openidc${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  beforeAll(async () => {
    akamon = await startAkamon({ env: { AKAMON_BACKCHANNEL_ALLOW_PRIVATE: 'true' } });
    const port = await freePort();
    site = `http://127.0.0.1:${port}`;
    const client = await registerFromRecipe(akamon, recipe, { 'https://wiki.example.ac.jp': site });
    clientId = client.clientId;
    apache = await startSite(port, client, true);
  });
  afterAll(async () => {
    await apache?.stop();
    await akamon?.close();
  });

  test('an unauthenticated request is sent to Akamon: response_type=code, PKCE S256, the scopes, the registered redirect URI', async () => {
    const params = await codeFlowRequest(akamon, `${site}/protected/`, { clientId, redirectUri: `${site}/protected/redirect_uri` });
    expect(params.get('code_challenge')).toMatch(/^[\w-]{43}$/);
  });

  test("sign-in through Akamon: the protected page shows the person's claims, REMOTE_USER is the Common ID", async () => {
    const account = await akamon.createReadyAccount({ name: 'Hanako Apache', affiliation: 'faculty' });
    const browser = new NavigatingBrowser(akamon.url);
    const page = await browser.signIn(`${site}/protected/`, account);
    expect(page.status).toBe(200);
    expect(page.url).toBe(`${site}/protected/`);
    expect(claimsOn(page)).toEqual({
      REMOTE_USER: account.commonId,
      sub: account.id,
      name: 'Hanako Apache',
      preferred_username: account.commonId,
      affiliation: 'faculty',
      email: `${account.commonId}@mail.example.ac.jp`,
      amr: 'pwd',
    });
    // The session lives in mod_auth_openidc: the next request is served without Akamon.
    expect((await browser.request(`${site}/protected/`)).status).toBe(200);
  });

  test("logout through mod_auth_openidc's logout URL ends the Akamon session too and returns to the site", async () => {
    const account = await akamon.createReadyAccount();
    const browser = new NavigatingBrowser(akamon.url);
    await browser.signIn(`${site}/protected/`, account);

    const { confirm, done } = await rpInitiatedLogout(akamon, browser, `${site}/protected/redirect_uri?logout=${encodeURIComponent(`${site}/`)}`, 'Wiki');
    expect(new URL(confirm.url).searchParams.get('id_token_hint')).toEqual(expect.any(String));
    expect(done.url).toBe(`${site}/`);
    expect(done.html).toContain('Public page');

    // Neither Apache nor Akamon signs the browser in again: the password is asked for.
    await expectSignedOutAtAkamon(akamon, browser, account.id, `${site}/protected/`);
  });

  test("back-channel logout: signing out at Akamon ends the site's session", async () => {
    const account = await akamon.createReadyAccount();
    const browser = new NavigatingBrowser(akamon.url);
    await browser.signIn(`${site}/protected/`, account);
    expect((await browser.request(`${site}/protected/`)).status).toBe(200);

    // Signed out at Akamon, not through the site: only the logout token can tell Apache.
    const done = await browser.confirmSignOut(await browser.browse(`${akamon.url}/session/end`));
    expect(done.url).toBe(`${akamon.url}/session/end/success`);
    expect([...browser.cookies.values()].some((c) => c.name === 'mod_auth_openidc_session')).toBe(true);
    const response = await browser.request(`${site}/protected/`);
    expect(response.status).toBe(302);
    expect(response.headers.get('location')!.startsWith(`${akamon.url}/auth?`)).toBe(true);
  });

  test('access_denied from Akamon (an error response with iss) shows the error, not the target_link_uri message', async () => {
    const account = await akamon.createReadyAccount();
    await denyAccount(akamon, clientId, account.commonId);
    const page = await refusedAt(site, account);
    expect(page.url.startsWith(`${site}/protected/redirect_uri?error=access_denied&`)).toBe(true);
    expect(page.html).toContain('OpenID Connect Provider error: access_denied');
    expect(page.html).toContain('the account is not allowed to use this system (account_denied)');
    expect(page.html).not.toContain('target_link_uri');
  });

  test("without the recipe's iss rewrite, mod_auth_openidc 2.4.12 shows the misleading target_link_uri message", async () => {
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const client = await akamon.createClient({ name: 'Wiki without the rewrite', redirectUris: [`${origin}/protected/redirect_uri`] });
    const plain = await startSite(port, { clientId: client.clientId, clientSecret: client.clientSecret! }, false);
    try {
      const account = await akamon.createReadyAccount();
      await denyAccount(akamon, client.clientId, account.commonId);
      const page = await refusedAt(origin, account);
      // Should a later mod_auth_openidc show the error here, the recipe's section 3 can go.
      expect(page.html).toContain('without specifying a &quot;target_link_uri&quot; parameter');
      expect(page.html).not.toContain('access_denied');
    } finally {
      await plain.stop();
    }
  });
});
