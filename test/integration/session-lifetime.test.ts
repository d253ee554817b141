import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { generate } from 'otplib';
import { shiftableClock } from '../support/clock.ts';
import { chooseMethod, codeFrom, enterCredentials, finishEnrolment, redeem, secretOn, startAuthorization, tokenRequest } from '../support/flows.ts';

/**
 * Guards issue 13 point 4: the sign-in session used to be saved with the full lifetime at every
 * authorization, so a relying party re-authenticating silently kept a person signed in forever
 * with an unchanged auth_time. AKAMON_SESSION_TTL_SECONDS is now counted from the sign-in and never
 * extended; AKAMON_SESSION_IDLE_SECONDS ends a session unused for that long. Both hold for silent
 * authorization and for refresh tokens bound to the session; offline_access tokens keep their own
 * lifetime. Lifetimes of seconds, on two nodes (one per limit) so that each limit is seen alone.
 */
let absolute: RunningAkamon;
let idle: RunningAkamon;
/** The clock of the absolute-lifetime node's own checks (oidc-provider keeps the real time). */
const clock = shiftableClock();

beforeAll(async () => {
  [absolute, idle] = await Promise.all([
    startAkamon({ clock, env: { AKAMON_SESSION_TTL_SECONDS: '6', AKAMON_SESSION_IDLE_SECONDS: '600' } }),
    startAkamon({ env: { AKAMON_SESSION_TTL_SECONDS: '600', AKAMON_SESSION_IDLE_SECONDS: '3' } }),
  ]);
});
afterAll(() => Promise.all([absolute.close(), idle.close()]));

type Client = Awaited<ReturnType<RunningAkamon['createClient']>>;
const claimsOf = (idToken: string) => JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString());
const until = (epochMs: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, epochMs - Date.now())));

/** A silent authorization: the tokens if the session still holds, else the error the relying party got. */
async function silent(akamon: RunningAkamon, browser: Browser, client: Client) {
  const started = await startAuthorization(browser, akamon, client, { prompt: 'none' });
  const error = new URL(started.page.url).searchParams.get('error');
  if (error) return { error };
  return { tokens: (await redeem(akamon, client, codeFrom(started.page), started.verifier)).body };
}

const refresh = (akamon: RunningAkamon, client: Client, refreshToken: string) => tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: refreshToken });

/** A normal authorization after the session ended: the sign-in page again (this browser's account picker). */
async function expectSignInPage(akamon: RunningAkamon, browser: Browser, client: Client) {
  const page = (await startAuthorization(browser, akamon, client)).page;
  expect(page.status).toBe(200);
  expect(page.html).toMatch(/action="\/interaction\/[^"]+\/(select|identifier|password)"/);
}

/** The stored expiry of the account's session rows. */
async function sessionExpiries(akamon: RunningAkamon, accountId: string): Promise<number[]> {
  const rows = await akamon.deps.database.db.selectFrom('oidc_payload').select('expires_at').where('model', '=', 'Session').where('account_id', '=', accountId).execute();
  return rows.map((row) => new Date(row.expires_at!).getTime());
}

describe('the absolute lifetime, from the sign-in', () => {
  test('silent authorizations and refreshes never extend it: then login_required, invalid_grant and the sign-in page', async () => {
    const client = await absolute.createClient();
    const account = await absolute.createReadyAccount();
    const browser = new Browser(absolute.url);
    const started = await startAuthorization(browser, absolute, client);
    const first = (await redeem(absolute, client, codeFrom(await enterCredentials(browser, started.page, account.commonId, account.password)), started.verifier)).body;
    const signedInAt = claimsOf(first.id_token).auth_time as number;
    let refreshToken = first.refresh_token as string;

    // Used every 1.5 s, far more often than any idle timeout: the session still ends 6 s after the sign-in.
    for (const at of [1.5, 3, 4.5]) {
      await until((signedInAt + at) * 1000);
      const again = await silent(absolute, browser, client);
      expect(again.tokens).toBeDefined();
      expect(claimsOf(again.tokens!.id_token).auth_time).toBe(signedInAt);
      const refreshed = await refresh(absolute, client, refreshToken);
      expect(refreshed.status).toBe(200);
      refreshToken = refreshed.body.refresh_token;
      // Stored: never past the sign-in plus the lifetime (whole seconds: at most one more).
      for (const expiry of await sessionExpiries(absolute, account.id)) expect(expiry).toBeLessThan((signedInAt + 7) * 1000);
    }

    await until((signedInAt + 7.3) * 1000);
    expect(await silent(absolute, browser, client)).toEqual({ error: 'login_required' });
    const refused = await refresh(absolute, client, refreshToken);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_grant');
    await expectSignInPage(absolute, browser, client);
  });
  test('a second factor does not extend it: enrolling one and verifying it later still ends the session 6 s after the password', async () => {
    const client = await absolute.createClient();
    const account = await absolute.createReadyAccount();
    const browser = new Browser(absolute.url);
    const started = await startAuthorization(browser, absolute, client);
    const first = (await redeem(absolute, client, codeFrom(await enterCredentials(browser, started.page, account.commonId, account.password)), started.verifier)).body;
    const signedInAt = claimsOf(first.id_token).auth_time as number;

    // A first factor from the account home (the password is recent), then a step-up with it at a
    // client that wants a factor shown within the last minute. Akamon's clock runs 59 s ahead: the
    // factor enrolled 3 s before is stale there, the one verified now is not.
    const page = await chooseMethod(browser, await browser.visit(`${absolute.url}/account/login?add=1&fresh=recent&back=%2Faccount`));
    const secret = secretOn(page);
    await finishEnrolment(browser, absolute, await browser.submit(page, /\/totp$/, { code: await generate({ secret }) }));
    const vpn = await absolute.createClient({ name: 'VPN', requireMfa: true, mfaMaxAge: 60 });
    await until((signedInAt + 4) * 1000);
    clock.offset = 59_000;
    let afterFactor: Record<string, string>;
    try {
      const stepUp = await startAuthorization(browser, absolute, vpn);
      expect(stepUp.page.html).toContain('Verify your identity');
      const verified = await browser.submit(stepUp.page, /\/totp$/, { code: await generate({ secret, epoch: Math.floor(clock.now().getTime() / 1000) }) });
      afterFactor = (await redeem(absolute, vpn, codeFrom(verified), stepUp.verifier)).body;
    } finally {
      clock.offset = 0;
    }
    // The factor signed the session in again (auth_time, for step-up freshness)...
    expect(claimsOf(afterFactor.id_token).auth_time).toBeGreaterThan(signedInAt);
    // ...but its lifetime still counts from the password.
    for (const expiry of await sessionExpiries(absolute, account.id)) expect(expiry).toBeLessThan((signedInAt + 7) * 1000);

    await until((signedInAt + 7.3) * 1000);
    expect(await silent(absolute, browser, client)).toEqual({ error: 'login_required' });
  });

  test('a session alone cannot add a first factor once its password is ten minutes old', async () => {
    const client = await absolute.createClient();
    const account = await absolute.createReadyAccount();
    const browser = new Browser(absolute.url);
    const started = await startAuthorization(browser, absolute, client);
    await enterCredentials(browser, started.page, account.commonId, account.password);
    clock.offset = 601_000;
    try {
      // A crafted request without max_age: the enrolment step does not open.
      const crafted = await browser.visit(`${absolute.url}/account/login?add=1&back=%2Faccount`);
      expect(crafted.html).not.toContain('/choose"');
      expect(await absolute.deps.mfa.factors(account.id)).toEqual([]);
    } finally {
      clock.offset = 0;
    }
  });
});

describe('the idle timeout', () => {
  test('a use (an authorization or a refresh) starts it again; an unused session ends, offline_access tokens do not', async () => {
    const client = await idle.createClient();
    const account = await idle.createReadyAccount();
    const browser = new Browser(idle.url);
    // A token that outlives the session: offline_access, which needs prompt=consent.
    const offline = await startAuthorization(browser, idle, client, { scope: 'openid offline_access', prompt: 'consent' });
    const consent = await enterCredentials(browser, offline.page, account.commonId, account.password);
    const offlineTokens = (await redeem(idle, client, codeFrom(await browser.submit(consent, /\/decide$/, { decision: 'approve' })), offline.verifier)).body;
    expect(offlineTokens.refresh_token).toBeTruthy();
    const bound = await silent(idle, browser, client);
    let refreshToken = bound.tokens!.refresh_token as string;
    const lastUse = Date.now();

    // 2 s later a refresh of the bound token is a use: 4 s after the last authorization (past a
    // 3 s timeout counted from it) the session still holds.
    await until(lastUse + 2000);
    const refreshed = await refresh(idle, client, refreshToken);
    expect(refreshed.status).toBe(200);
    refreshToken = refreshed.body.refresh_token;
    await until(lastUse + 4000);
    const again = await silent(idle, browser, client);
    expect(again.tokens).toBeDefined();
    refreshToken = again.tokens!.refresh_token;
    expect((await fetch(`${idle.url}/me`, { headers: { authorization: `Bearer ${again.tokens!.access_token}` } })).status).toBe(200);

    // Then 3 s unused: it ends.
    await until(lastUse + 4000 + 3800);
    expect(await silent(idle, browser, client)).toEqual({ error: 'login_required' });
    const refused = await refresh(idle, client, refreshToken);
    expect(refused.body.error).toBe('invalid_grant');
    // An access token bound to the session ends with it too.
    expect((await fetch(`${idle.url}/me`, { headers: { authorization: `Bearer ${again.tokens!.access_token}` } })).status).toBe(401);
    await expectSignInPage(idle, browser, client);
    // The offline_access token is not bound to the session.
    const stillOffline = await refresh(idle, client, offlineTokens.refresh_token);
    expect(stillOffline.status).toBe(200);
    expect(stillOffline.body.refresh_token).toBeTruthy();
  });
});
