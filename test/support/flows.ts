import { expect } from '@jest/globals';
import { sql } from 'kysely';
import { authorizeUrl, type Browser, pkce, type Page } from './browser.ts';
import type { RunningAkamon } from './akamon.ts';
import { mailedCode } from './smtp-sink.ts';

export interface SignInResult {
  page: Page;
  verifier: string;
  state: string;
  code?: string;
}

/** Starts an authorization request and returns the first page, with the PKCE verifier kept. */
export async function startAuthorization(browser: Browser, akamon: RunningAkamon, client: { clientId: string; redirectUri: string }, params: Record<string, string> = {}) {
  const { verifier, challenge } = pkce();
  const state = `st-${Math.random().toString(36).slice(2)}`;
  const page = await browser.visit(
    authorizeUrl(akamon.url, { client_id: client.clientId, redirect_uri: client.redirectUri, code_challenge: challenge, code_challenge_method: 'S256', state, ...params }),
  );
  return { page, verifier, state };
}

/** Identifier, then password; returns whatever comes next (the relying party, or another step). */
export async function enterCredentials(browser: Browser, page: Page, commonId: string, password: string): Promise<Page> {
  let current = page;
  if (/name="identifier"/.test(current.html)) current = await browser.submit(current, /\/identifier$/, { identifier: commonId });
  expect(current.html).toMatch(/name="password"/);
  return browser.submit(current, /\/password$/, { password });
}

export function codeFrom(page: Page): string {
  const url = new URL(page.url);
  const code = url.searchParams.get('code');
  if (!code) throw new Error(`no code in ${page.url} (status ${page.status}):\n${page.html.slice(0, 1500)}`);
  return code;
}

/** A whole sign-in of a ready account (password already chosen) up to the code. */
export async function signIn(
  browser: Browser,
  akamon: RunningAkamon,
  client: { clientId: string; redirectUri: string },
  account: { commonId: string; password: string },
  params: Record<string, string> = {},
): Promise<SignInResult> {
  const started = await startAuthorization(browser, akamon, client, params);
  const page = await enterCredentials(browser, started.page, account.commonId, account.password);
  return { ...started, page, code: codeFrom(page) };
}

export async function tokenRequest(akamon: RunningAkamon, client: { clientId: string; clientSecret: string | null }, body: Record<string, string>) {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  const form = new URLSearchParams(body);
  if (client.clientSecret) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64')}`;
  else form.set('client_id', client.clientId);
  const response = await fetch(`${akamon.url}/token`, { method: 'POST', headers, body: form });
  return { status: response.status, body: (await response.json()) as Record<string, any>, headers: response.headers };
}

export async function redeem(akamon: RunningAkamon, client: { clientId: string; clientSecret: string | null; redirectUri: string }, code: string, verifier: string) {
  return tokenRequest(akamon, client, { grant_type: 'authorization_code', code, redirect_uri: client.redirectUri, code_verifier: verifier });
}

/**
 * Moves the consumption of a code or refresh token back past the retry grace, as if that time had
 * gone by: presenting it again is then a replay, not a retry of a lost answer (oidc/token-retry.ts).
 */
export async function pastRetryGrace(akamon: RunningAkamon, codeOrRefreshToken: string) {
  await akamon.deps.database.db
    .updateTable('oidc_payload')
    .set({ consumed_at: sql<Date>`consumed_at - make_interval(secs => ${akamon.config.tokenRetryGraceSeconds + 1})` as never })
    .where('model', 'in', ['AuthorizationCode', 'RefreshToken'])
    .where('id', '=', codeOrRefreshToken)
    .execute();
}

/**
 * From "More information required" or "Add a sign-in method" to the page of one method (app: the
 * authenticator app; key: a security key; phone; email: the recovery address, when adding).
 */
export async function chooseMethod(browser: Browser, page: Page, method: 'app' | 'key' | 'phone' | 'email' = 'app'): Promise<Page> {
  expect(page.html).toMatch(/\/choose"/);
  return browser.submit(page, /\/choose$/, { method });
}

/** The authenticator app's secret, as the set-up page shows it under the QR code. */
export const secretOn = (page: Page) => /<code>([A-Z2-7 ]+)<\/code>/.exec(page.html)![1].replace(/ /g, '');

/**
 * After a factor is set up at enrolment: confirm a recovery email (the code read from the SMTP
 * sink) and continue. Returns the page after the enrolment: the relying party, or the next step.
 */
export async function finishEnrolment(browser: Browser, akamon: RunningAkamon, page: Page, email = `recovery-${Math.random().toString(36).slice(2)}@example.com`): Promise<Page> {
  let current = page;
  if (/\/email_send"/.test(current.html)) {
    current = await browser.submit(current, /\/email_send$/, { email });
    current = await browser.submit(current, /\/email_confirm$/, { code: mailedCode(akamon.mails, email) });
  }
  // The app password is optional: skipped here.
  if (/\/app_password_skip"/.test(current.html)) current = await browser.submit(current, /\/app_password_skip$/, {});
  expect(current.html).toContain('Your security info is set up');
  return browser.submit(current, /\/finish$/, {});
}

/**
 * Waits, when needed, until at least `seconds` are left in the current 30-second TOTP step. A test
 * that enrols with one step's code and then signs in with a neighbouring step's must not see the
 * step change in between: the neighbour would then be the code already used.
 */
export async function freshTotpStep(seconds = 15): Promise<void> {
  const left = 30 - (Math.floor(Date.now() / 1000) % 30);
  if (left < seconds) await new Promise((resolve) => setTimeout(resolve, left * 1000 + 200));
}
