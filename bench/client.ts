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
 * The pages a person fills in, from the first page the authorization request shows to where the
 * last one leads (the redirects inside the server followed), or undefined if a step was refused.
 */
export type Steps = (browser: Browser, first: Page, account: BenchAccount) => Promise<Page | undefined>;

/** Akamon's identifier and password steps: all a client without MFA asks. */
export const passwordSteps: Steps = async (browser, first, account) => submitPassword(browser, await submitIdentifier(browser, first, account));

/** The baseline's one page (bench/baseline/server.ts): user name and password. */
export const baselineSteps: Steps = (browser, first, account) => browser.submit(first, /\/login$/, { login: account.commonId, password: PASSWORD });

/**
 * The steps a person takes on Akamon's pages, whichever protocol sent them there: identifier,
 * password, TOTP.
 */
export const credentialSteps: Steps = async (browser, first, account) => {
  const page = await passwordSteps(browser, first, account);
  if (page?.status !== 200) return undefined;
  // The next time step: the enrolment used the previous one, and each account signs in once per run.
  return browser.submit(page, /\/totp$/, { code: await generate({ secret: account.totpSecret, epoch: Math.floor(Date.now() / 1000) + 30 }) });
};

/** One person signing in as a browser does: authorize, the steps (identifier, password, TOTP by default), code, token, userinfo. */
export async function signIn(url: string, client: Seeded['client'], account: BenchAccount, browser = new Browser(url), steps: Steps = credentialSteps): Promise<Tokens | undefined> {
  const { page: first, verifier } = await authorize(url, client, browser);
  const page = await steps(browser, first, account);
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

/** What each kind of request cost, by method and route: how many were sent and the sum of what `measure` moved by. */
export type Charges = Map<string, { count: number; amount: number }>;

/**
 * A browser whose every request is charged to its method and route (ids and codes folded), by
 * what `measure` (CPU of the server, statements sent) moved between the request and its whole answer.
 */
export class MeteredBrowser extends Browser {
  readonly #measure: () => number | Promise<number>;
  readonly #charges: Charges;

  constructor(origin: string, measure: () => number | Promise<number>, charges: Charges) {
    super(origin);
    this.#measure = measure;
    this.#charges = charges;
  }

  override async request(url: string, init: RequestInit = {}): Promise<Response> {
    const before = await this.#measure();
    const response = await super.request(url, init);
    await response.clone().arrayBuffer();
    const amount = (await this.#measure()) - before;
    const route = `${init.method ?? 'GET'} ${new URL(url, this.origin).pathname.replace(/\/interaction\/[^/]+/, '/interaction/:uid').replace(/\/auth\/[^/]+/, '/auth/:uid')}`;
    const entry = this.#charges.get(route) ?? { count: 0, amount: 0 };
    entry.count += 1;
    entry.amount += amount;
    this.#charges.set(route, entry);
    return response;
  }
}
