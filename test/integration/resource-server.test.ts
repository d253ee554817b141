import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as client from 'openid-client';
import { adminApi, startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { enterCredentials } from '../support/flows.ts';

/**
 * Guards issue 16 point 2: an API (a client registered with a resource indicator, no redirect URI)
 * checks the tokens issued for it by introspection, with the person's Common ID (`username`) and the
 * client that got the token; a token for another API, or for no API, is not active to it; the access
 * rules of the token's client and of the API decide, at each introspection; relying parties get
 * tokens only for the APIs they are registered for. Everything runs over real HTTP with
 * openid-client 6 as the relying party, the back-end service and the APIs.
 */

let akamon: RunningAkamon;
beforeAll(async () => {
  akamon = await startAkamon();
});
afterAll(() => akamon.close());

const LIBRARY = 'https://api.example.ac.jp/library';
const GRADES = 'https://api.example.ac.jp/grades';
const insecure = { execute: [client.allowInsecureRequests] };

const admin = (method: string, path: string, body?: unknown) => adminApi(akamon, method, path, body);

async function register(body: Record<string, unknown>) {
  const created = await admin('POST', '/clients', body);
  if (created.status !== 201) throw new Error(`registration refused: ${JSON.stringify(created.body)}`);
  const { clientId, clientSecret } = created.body as { clientId: string; clientSecret: string };
  return { clientId, clientSecret, config: await client.discovery(new URL(akamon.url), clientId, undefined, client.ClientSecretBasic(clientSecret), insecure) };
}

type Registered = Awaited<ReturnType<typeof register>>;
let library: Registered;
let grades: Registered;
let portal: Registered;
const PORTAL_CALLBACK = 'http://127.0.0.1:9/portal/callback';

beforeAll(async () => {
  library = await register({ name: 'Library API', resourceServer: LIBRARY });
  grades = await register({ name: 'Grades API', resourceServer: GRADES });
  portal = await register({ name: 'Portal', firstParty: true, redirectUris: [PORTAL_CALLBACK], resources: [LIBRARY, GRADES] });
});

/** Signs a new person in at the portal, asking for both APIs; the code gives a token for userinfo. */
async function signIn(scope = 'openid profile') {
  const account = await akamon.createReadyAccount();
  const verifier = client.randomPKCECodeVerifier();
  const params = new URLSearchParams({ redirect_uri: PORTAL_CALLBACK, scope, code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
  params.append('resource', LIBRARY);
  params.append('resource', GRADES);
  const browser = new Browser(akamon.url);
  const callback = await enterCredentials(browser, await browser.visit(client.buildAuthorizationUrl(portal.config, params).href), account.commonId, account.password);
  const tokens = await client.authorizationCodeGrant(portal.config, new URL(callback.url), { pkceCodeVerifier: verifier, idTokenExpected: true });
  return { account, tokens };
}

/** A token for one API, from the refresh token (RFC 8707 section 2.2). */
async function tokenFor(refreshToken: string, resource: string) {
  const refreshed = await client.refreshTokenGrant(portal.config, refreshToken, { resource });
  return { accessToken: refreshed.access_token, refreshToken: refreshed.refresh_token! };
}

describe('an API checks the tokens issued for it', () => {
  let account: Awaited<ReturnType<RunningAkamon['createReadyAccount']>>;
  let plain: string;
  let forLibrary: string;
  let forGrades: string;

  beforeAll(async () => {
    const signedIn = await signIn();
    account = signedIn.account;
    plain = signedIn.tokens.access_token;
    const first = await tokenFor(signedIn.tokens.refresh_token!, LIBRARY);
    forLibrary = first.accessToken;
    forGrades = (await tokenFor(first.refreshToken, GRADES)).accessToken;
  });

  test('a token for the API is active to it, with the Common ID, the client and the audience', async () => {
    const answer = await client.tokenIntrospection(library.config, forLibrary);
    expect(answer).toMatchObject({ active: true, username: account.commonId, client_id: portal.clientId, aud: LIBRARY, sub: account.id, token_type: 'Bearer' });
  });

  test('a token for another API, and a token for no API, are not active to it', async () => {
    expect(await client.tokenIntrospection(library.config, forGrades)).toEqual({ active: false });
    expect(await client.tokenIntrospection(grades.config, forLibrary)).toEqual({ active: false });
    expect(await client.tokenIntrospection(library.config, plain)).toEqual({ active: false });
    expect(await client.tokenIntrospection(grades.config, forGrades)).toMatchObject({ active: true, username: account.commonId, aud: GRADES });
    // The token for the API is for the API: userinfo refuses it, and takes the plain one.
    await expect(client.fetchUserInfo(portal.config, forLibrary, account.id)).rejects.toThrow();
    expect(await client.fetchUserInfo(portal.config, plain, account.id)).toMatchObject({ sub: account.id });
  });

  test('the portal still sees its own tokens, with the Common ID since it was granted the profile scope', async () => {
    expect(await client.tokenIntrospection(portal.config, forLibrary)).toMatchObject({ active: true, client_id: portal.clientId, username: account.commonId });
    expect(await client.tokenIntrospection(portal.config, plain)).toMatchObject({ active: true, username: account.commonId });
  });

  test("the API's own access rules decide at each introspection: deny, allow again, MFA", async () => {
    expect((await admin('POST', `/clients/${library.clientId}/accounts`, { commonId: account.commonId, effect: 'deny' })).status).toBe(200);
    expect(await client.tokenIntrospection(library.config, forLibrary)).toEqual({ active: false });
    // The portal's rules do not deny the person: its own view of the token is unchanged.
    expect(await client.tokenIntrospection(portal.config, forLibrary)).toMatchObject({ active: true });
    expect((await admin('DELETE', `/clients/${library.clientId}/accounts/${account.commonId}`)).status).toBe(204);
    expect(await client.tokenIntrospection(library.config, forLibrary)).toMatchObject({ active: true });
    // An API that demands a second factor refuses a token whose sign-in showed only a password.
    expect((await admin('PATCH', `/clients/${library.clientId}`, { requireMfa: true })).status).toBe(200);
    expect(await client.tokenIntrospection(library.config, forLibrary)).toEqual({ active: false });
    expect((await admin('PATCH', `/clients/${library.clientId}`, { requireMfa: false })).status).toBe(200);
    expect(await client.tokenIntrospection(library.config, forLibrary)).toMatchObject({ active: true });
  });

  test("a person the token's client no longer admits is not active to the API either", async () => {
    expect((await admin('POST', `/clients/${portal.clientId}/accounts`, { commonId: account.commonId, effect: 'deny' })).status).toBe(200);
    expect(await client.tokenIntrospection(library.config, forLibrary)).toEqual({ active: false });
    expect((await admin('DELETE', `/clients/${portal.clientId}/accounts/${account.commonId}`)).status).toBe(204);
    // A suspended account is denied everywhere.
    expect((await admin('POST', `/accounts/${account.commonId}/suspend`)).status).toBe(200);
    expect(await client.tokenIntrospection(library.config, forLibrary)).toEqual({ active: false });
  });
});

describe('which tokens a client may get', () => {
  test('a relying party gets tokens only for the APIs it is registered for', async () => {
    const outsider = await register({ name: 'Outsider', firstParty: true, redirectUris: ['http://127.0.0.1:9/outsider/callback'], resources: [GRADES] });
    const browser = new Browser(akamon.url);
    for (const resource of [LIBRARY, 'https://api.example.ac.jp/nothing-here']) {
      const url = client.buildAuthorizationUrl(outsider.config, {
        redirect_uri: 'http://127.0.0.1:9/outsider/callback',
        scope: 'openid',
        code_challenge: 'x'.repeat(43),
        code_challenge_method: 'S256',
        resource,
      });
      const page = await browser.visit(url.href);
      expect([resource, new URL(page.url).searchParams.get('error')]).toEqual([resource, 'invalid_target']);
    }
  });

  test('without profile, the portal is not told the Common ID of its own token', async () => {
    const { tokens } = await signIn('openid');
    const answer = await client.tokenIntrospection(portal.config, tokens.access_token);
    expect(answer.active).toBe(true);
    expect(answer).not.toHaveProperty('username');
    // The API the token is for is told, whatever the scope.
    const forLibrary = await tokenFor(tokens.refresh_token!, LIBRARY);
    expect(await client.tokenIntrospection(library.config, forLibrary.accessToken)).toMatchObject({ active: true, username: expect.stringMatching(/^\d{10}$/) });
  });

  test('a back-end service gets a token for an API for itself (client credentials), without redirect URIs', async () => {
    const service = await register({ name: 'Batch service', clientCredentials: true, resources: [LIBRARY] });
    expect((await admin('GET', `/clients/${service.clientId}`)).body).toMatchObject({ redirectUris: [], clientCredentials: true, resources: [LIBRARY] });
    const token = await client.clientCredentialsGrant(service.config, { resource: LIBRARY });
    const answer = await client.tokenIntrospection(library.config, token.access_token);
    expect(answer).toMatchObject({ active: true, client_id: service.clientId, aud: LIBRARY });
    expect(answer).not.toHaveProperty('username');
    expect(await client.tokenIntrospection(grades.config, token.access_token)).toEqual({ active: false });
    await expect(client.clientCredentialsGrant(service.config, { resource: GRADES })).rejects.toMatchObject({ error: 'invalid_target' });
  });
});

describe('registering APIs', () => {
  test('an API needs no redirect URI; its indicator is kept in one spelling and names one API', async () => {
    const shown = (await admin('GET', `/clients/${library.clientId}`)).body;
    expect(shown).toMatchObject({ resourceServer: LIBRARY, redirectUris: [], tokenEndpointAuthMethod: 'client_secret_basic' });
    const taken = await admin('POST', '/clients', { name: 'Library again', resourceServer: 'HTTPS://API.example.ac.jp/library' });
    expect(taken).toMatchObject({ status: 409, body: { error: 'resource_server_taken' } });
    const before = (await admin('GET', '/clients')).body.clients.length;
    for (const [body, error] of [
      [{ name: 'Public API', resourceServer: 'https://api.example.ac.jp/public', tokenEndpointAuthMethod: 'none' }, 'invalid_client_metadata'],
      [{ name: 'Fragment API', resourceServer: 'https://api.example.ac.jp/x#y' }, 'invalid_uri'],
      [{ name: 'Nothing at all' }, 'invalid_uri'],
      [{ name: 'Bad resource', redirectUris: ['http://127.0.0.1:9/cb'], resources: ['not a uri'] }, 'invalid_uri'],
    ] as const) {
      const refused = await admin('POST', '/clients', body);
      expect([body.name, refused.status, refused.body.error]).toEqual([body.name, 400, error]);
    }
    expect((await admin('GET', '/clients')).body.clients.length).toBe(before);
  });
});

test("a third-party client asking for an API: the consent page names the API it is to use on the person's behalf", async () => {
  const outside = await register({ name: 'Outside portal', redirectUris: ['http://127.0.0.1:9/outside/callback'], resources: [LIBRARY] });
  const account = await akamon.createReadyAccount();
  const verifier = client.randomPKCECodeVerifier();
  const params = new URLSearchParams({
    redirect_uri: 'http://127.0.0.1:9/outside/callback',
    scope: 'openid',
    resource: LIBRARY,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const browser = new Browser(akamon.url);
  const page = await enterCredentials(browser, await browser.visit(client.buildAuthorizationUrl(outside.config, params).href), account.commonId, account.password);
  expect(page.html).toContain('Use Library API on your behalf');
});
