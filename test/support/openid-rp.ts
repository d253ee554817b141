import * as client from 'openid-client';
import type { RunningAkamon } from './akamon.ts';
import { Browser, type Page } from './browser.ts';
import { enterCredentials } from './flows.ts';

/**
 * openid-client v6 as a relying party of a test's Akamon over loopback HTTP. The redirect URI is
 * never served: Browser stops at the redirect leaving Akamon and hands over the URL.
 */
export const insecure = { execute: [client.allowInsecureRequests] };

export function discover(akamon: RunningAkamon, rp: { clientId: string; clientSecret: string | null }): Promise<client.Configuration> {
  const auth = rp.clientSecret ? client.ClientSecretBasic(rp.clientSecret) : client.None();
  return client.discovery(new URL(akamon.url), rp.clientId, undefined, auth, insecure);
}

/**
 * The authorization code flow with PKCE, state and nonce, signing in through Akamon's pages and
 * approving the consent page if one comes. `params` are more authorization parameters (scope,
 * claims_locales, claims ...).
 */
export async function codeFlow(
  akamon: RunningAkamon,
  config: client.Configuration,
  redirectUri: string,
  account: { commonId: string; password: string },
  params: Record<string, string> = {},
  browser = new Browser(akamon.url),
) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...params,
  });
  let page: Page = await browser.visit(url.href);
  if (/name="identifier"/.test(page.html)) page = await enterCredentials(browser, page, account.commonId, account.password);
  const consent = /\/decide"/.test(page.html) ? page : undefined;
  if (consent) page = await browser.submit(consent, /\/decide$/, { decision: 'approve' });
  if (!page.url.startsWith(redirectUri)) throw new Error(`expected a redirect to ${redirectUri}, got ${page.url} (${page.status}):\n${page.html.slice(0, 1500)}`);
  const tokens = await client.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
  return { tokens, browser, consent };
}
