import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as client from 'openid-client';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser, decode, type Page } from '../support/browser.ts';
import { enterCredentials } from '../support/flows.ts';

// A real relying party (openid-client v6) against Akamon over loopback HTTP. The relying party's
// redirect URI is never served: Browser stops at the redirect leaving Akamon and hands us the URL.

let akamon: RunningAkamon;

beforeAll(async () => {
  akamon = await startAkamon();
});
afterAll(() => akamon.close());

const insecure = { execute: [client.allowInsecureRequests] };

async function discover(rp: { clientId: string; clientSecret: string | null }): Promise<client.Configuration> {
  const auth = rp.clientSecret ? client.ClientSecretBasic(rp.clientSecret) : client.None();
  return client.discovery(new URL(akamon.url), rp.clientId, undefined, auth, insecure);
}

// With response_type=code an access token is issued, so (OIDC Core 5.4) the profile and email
// scope claims go to userinfo, not into the ID token; a relying party that wants them in the ID
// token asks with the claims parameter.
const ID_TOKEN_CLAIMS = JSON.stringify({ id_token: { name: null, preferred_username: null, affiliation: null, email: null } });

/** Authorization code flow with PKCE S256, state and nonce, signing in through Akamon's pages. */
async function codeFlow(config: client.Configuration, redirectUri: string, account: { commonId: string; password: string }, extra: Record<string, string> = {}, browser = new Browser(akamon.url)) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  expect(authorizationUrl.origin).toBe(akamon.url);
  expect(authorizationUrl.pathname).toBe('/auth');
  const first = await browser.visit(authorizationUrl.href);
  expect(first.status).toBe(200);
  expect(first.html).toMatch(/name="identifier"/);
  const callback: Page = await enterCredentials(browser, first, account.commonId, account.password);
  if (!callback.url.startsWith(redirectUri)) throw new Error(`expected a redirect to ${redirectUri}, got ${callback.url} (${callback.status}):\n${callback.html.slice(0, 1500)}`);
  const tokens = await client.authorizationCodeGrant(config, new URL(callback.url), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
  return { tokens, nonce, browser };
}

describe('openid-client v6 as a relying party', () => {
  test('discovery metadata', async () => {
    const rp = await akamon.createClient({ name: 'Discovery RP' });
    const config = await discover(rp);
    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe(akamon.url);
    expect(metadata.authorization_endpoint).toBe(`${akamon.url}/auth`);
    expect(metadata.token_endpoint).toBe(`${akamon.url}/token`);
    expect(metadata.jwks_uri).toBe(`${akamon.url}/jwks`);
    expect(metadata.code_challenge_methods_supported).toContain('S256');
    expect(metadata.code_challenge_methods_supported).not.toContain('plain');
    expect(metadata.end_session_endpoint).toBeTruthy();
    expect(metadata.introspection_endpoint).toBeTruthy();
    expect(metadata.revocation_endpoint).toBeTruthy();
  });

  test('confidential client: code flow, claims, userinfo, refresh, introspection, revocation, end session', async () => {
    const rp = await akamon.createClient({ name: 'Library System', redirectUris: ['http://127.0.0.1:9/library/callback'], postLogoutRedirectUris: ['http://127.0.0.1:9/library/bye'] });
    const account = await akamon.createReadyAccount({ name: 'Taro Akamon', affiliation: 'faculty' });
    const config = await discover(rp);
    const before = Math.floor(Date.now() / 1000);
    const { tokens, nonce, browser } = await codeFlow(config, rp.redirectUri, account, { claims: ID_TOKEN_CLAIMS });

    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.access_token).toEqual(expect.any(String));
    expect(tokens.refresh_token).toEqual(expect.any(String));
    const claims = tokens.claims()!;
    expect(claims).toMatchObject({
      iss: akamon.url,
      aud: rp.clientId,
      sub: account.id,
      nonce,
      preferred_username: account.commonId,
      name: 'Taro Akamon',
      affiliation: 'faculty',
      email: `${account.commonId}@mail.example.ac.jp`,
      acr: 'urn:akamon:acr:password',
      amr: ['pwd'],
    });
    expect(typeof claims.auth_time).toBe('number');
    expect(claims.auth_time!).toBeGreaterThanOrEqual(before - 5);
    expect(claims.auth_time!).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 5);

    const userinfo = await client.fetchUserInfo(config, tokens.access_token, account.id);
    expect(userinfo).toMatchObject({ sub: account.id, preferred_username: account.commonId, name: 'Taro Akamon', affiliation: 'faculty', email: `${account.commonId}@mail.example.ac.jp` });

    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.access_token).toEqual(expect.any(String));
    expect(refreshed.refresh_token).toEqual(expect.any(String));
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    if (refreshed.id_token) expect(refreshed.claims()!.sub).toBe(account.id);

    const active = await client.tokenIntrospection(config, refreshed.access_token);
    expect(active).toMatchObject({ active: true, sub: account.id, client_id: rp.clientId });
    const refreshActive = await client.tokenIntrospection(config, refreshed.refresh_token!, { token_type_hint: 'refresh_token' });
    expect(refreshActive.active).toBe(true);

    await client.tokenRevocation(config, refreshed.access_token);
    expect(await client.tokenIntrospection(config, refreshed.access_token)).toEqual({ active: false });
    await expect(client.fetchUserInfo(config, refreshed.access_token, account.id)).rejects.toThrow();

    await client.tokenRevocation(config, refreshed.refresh_token!, { token_type_hint: 'refresh_token' });
    expect((await client.tokenIntrospection(config, refreshed.refresh_token!, { token_type_hint: 'refresh_token' })).active).toBe(false);
    await expect(client.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });

    const logoutState = client.randomState();
    const endSession = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:9/library/bye', state: logoutState });
    expect(endSession.href.startsWith(config.serverMetadata().end_session_endpoint!)).toBe(true);
    const confirm = await browser.visit(endSession.href);
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain('Sign out?');
    expect(confirm.html).toContain('Yes, sign me out');
    expect(confirm.html).toContain('Library System');
    const xsrf = decode(/name="xsrf" value="([^"]+)"/.exec(confirm.html)![1]);
    const action = decode(/<form[^>]*id="op.logoutForm"[^>]*action="([^"]+)"|<form[^>]*action="([^"]+)"[^>]*id="op.logoutForm"/.exec(confirm.html)?.slice(1).find(Boolean) ?? '/session/end/confirm');
    const done = await browser.visit(new URL(action, akamon.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
    });
    expect(done.url.startsWith('http://127.0.0.1:9/library/bye')).toBe(true);
    expect(new URL(done.url).searchParams.get('state')).toBe(logoutState);
  });

  test('public client: code flow with PKCE and no secret', async () => {
    const rp = await akamon.createClient({ name: 'Mobile App', public: true, redirectUris: ['http://127.0.0.1:9/mobile/callback'] });
    expect(rp.clientSecret).toBeNull();
    const account = await akamon.createReadyAccount({ name: 'Jiro Public', affiliation: 'student' });
    const config = await discover(rp);
    const { tokens } = await codeFlow(config, rp.redirectUri, account);
    const claims = tokens.claims()!;
    expect(claims).toMatchObject({ sub: account.id, aud: rp.clientId, acr: 'urn:akamon:acr:password', amr: ['pwd'] });
    expect(typeof claims.auth_time).toBe('number');
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, account.id);
    expect(userinfo).toEqual({
      sub: account.id,
      preferred_username: account.commonId,
      name: 'Jiro Public',
      affiliation: 'student',
      email: `${account.commonId}@mail.example.ac.jp`,
      email_verified: true,
    });
    if (tokens.refresh_token) {
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
      expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    }
  });

  test('pairwise client: sub differs from the account id and is stable', async () => {
    const rp = await akamon.createClient({ name: 'Pairwise RP', pairwise: true, redirectUris: ['http://127.0.0.1:9/pairwise/callback'] });
    const account = await akamon.createReadyAccount();
    const config = await discover(rp);
    const first = await codeFlow(config, rp.redirectUri, account);
    const second = await codeFlow(config, rp.redirectUri, account);
    const sub = first.tokens.claims()!.sub;
    expect(sub).not.toBe(account.id);
    expect(second.tokens.claims()!.sub).toBe(sub);
    const userinfo = await client.fetchUserInfo(config, first.tokens.access_token, sub);
    expect(userinfo.sub).toBe(sub);
    expect(userinfo.preferred_username).toBe(account.commonId);
  });
});
