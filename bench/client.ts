import { generate } from 'otplib';
import { Agent, request } from 'undici';
import { authorizeUrl, Browser, pkce, type Page } from '../test/support/browser.ts';
import { PASSWORD, REDIRECT_URI, type BenchAccount, type Seeded } from './setup.ts';

// What the load generator does, as a browser and as a relying party would.

export interface Tokens {
  accessToken: string;
  refreshToken: string;
}

// undici's own request API: the generator must outrun the server it measures, and fetch costs more.
const agent = new Agent({ connections: 256, keepAliveTimeout: 60_000 });

export async function call(url: string, init: { method?: 'GET' | 'POST'; headers?: Record<string, string>; form?: Record<string, string> } = {}): Promise<{ status: number; text: string }> {
  const headers = { ...init.headers, ...(init.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) };
  const response = await request(url, { method: init.method ?? (init.form ? 'POST' : 'GET'), headers, body: init.form ? new URLSearchParams(init.form).toString() : undefined, dispatcher: agent });
  return { status: response.statusCode, text: await response.body.text() };
}

export const basic = (client: Seeded['client']) => `Basic ${Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64')}`;

export async function tokenRequest(url: string, client: Seeded['client'], form: Record<string, string>): Promise<{ status: number; body: Record<string, string> }> {
  const answer = await call(`${url}/token`, { headers: { authorization: basic(client) }, form });
  return { status: answer.status, body: JSON.parse(answer.text) as Record<string, string> };
}

/** The identifier step, from the first page of a sign-in: the password page. */
const submitIdentifier = (browser: Browser, page: Page, account: BenchAccount) => browser.submit(page, /\/identifier$/, { identifier: account.commonId });

export const submitPassword = (browser: Browser, page: Page) => browser.submit(page, /\/password$/, { password: PASSWORD });

/** The relying party sends the browser to authorize: the first page, and the PKCE verifier to redeem the code with. */
async function authorize(url: string, client: Seeded['client'], browser: Browser): Promise<{ page: Page; verifier: string }> {
  const { verifier, challenge } = pkce();
  return { page: await browser.visit(authorizeUrl(url, { client_id: client.clientId, redirect_uri: REDIRECT_URI, code_challenge: challenge, code_challenge_method: 'S256' })), verifier };
}

/** Authorize and the identifier step: the password page (for the login storm, which stops there). */
export async function toPasswordPage(url: string, client: Seeded['client'], account: BenchAccount, browser: Browser): Promise<Page> {
  return submitIdentifier(browser, (await authorize(url, client, browser)).page, account);
}

/**
 * The steps a person takes on Akamon's pages, whichever protocol sent them there: identifier,
 * password, TOTP. Where the last step leads (the redirects inside Akamon followed), or undefined
 * if the password was not accepted.
 */
export async function credentialSteps(browser: Browser, first: Page, account: BenchAccount): Promise<Page | undefined> {
  const page = await submitPassword(browser, await submitIdentifier(browser, first, account));
  if (page.status !== 200) return undefined;
  // The next time step: the enrolment used the previous one, and each account signs in once per run.
  return browser.submit(page, /\/totp$/, { code: await generate({ secret: account.totpSecret, epoch: Math.floor(Date.now() / 1000) + 30 }) });
}

/** One person signing in as a browser does: authorize, identifier, password, TOTP, code, token, userinfo. */
export async function signIn(url: string, client: Seeded['client'], account: BenchAccount, browser = new Browser(url)): Promise<Tokens | undefined> {
  const { page: first, verifier } = await authorize(url, client, browser);
  const page = await credentialSteps(browser, first, account);
  const code = page?.url.startsWith(REDIRECT_URI) ? new URL(page.url).searchParams.get('code') : null;
  if (!code) return undefined;
  const tokens = await tokenRequest(url, client, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier });
  if (tokens.status !== 200) return undefined;
  const userinfo = await call(`${url}/me`, { headers: { authorization: `Bearer ${tokens.body.access_token}` } });
  return userinfo.status === 200 ? { accessToken: tokens.body.access_token!, refreshToken: tokens.body.refresh_token! } : undefined;
}

/** Refresh grants over a pool of grants, each rotated in turn (one request per grant at a time). */
export function refresher(url: string, client: Seeded['client'], pool: Tokens[]) {
  const free = [...pool];
  return async () => {
    const tokens = free.pop();
    if (!tokens) return false;
    const answer = await tokenRequest(url, client, { grant_type: 'refresh_token', refresh_token: tokens.refreshToken });
    if (answer.status === 200) {
      tokens.refreshToken = answer.body.refresh_token!;
      tokens.accessToken = answer.body.access_token!;
    }
    free.unshift(tokens);
    return answer.status === 200;
  };
}
