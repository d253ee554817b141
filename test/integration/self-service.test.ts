import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { codeFrom, enterCredentials, redeem, signIn, startAuthorization, tokenRequest } from '../support/flows.ts';

const DAY = 24 * 3600 * 1000;
const clock = { current: new Date(), now() { return this.current; } };
let akamon: RunningAkamon;
let client: Awaited<ReturnType<RunningAkamon['createClient']>>;

beforeAll(async () => {
  akamon = await startAkamon({ clock });
  client = await akamon.createClient({ name: 'Portal', redirectUris: ['http://127.0.0.1:9/portal'] });
});
afterAll(() => akamon.close());

describe('password expiry (397 days without MFA)', () => {
  test('a notice from 14 days before: continue, or change now', async () => {
    clock.current = new Date();
    const account = await akamon.createReadyAccount();
    clock.current = new Date(Date.now() + 390 * DAY);
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, client);
    const notice = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(notice.html).toContain('Your password expires soon');
    expect(codeFrom(await browser.submit(notice, /\/continue$/, {}))).toBeTruthy();
    // Silent sign-in is never held up by the notice.
    expect(codeFrom((await startAuthorization(browser, akamon, client, { prompt: 'none' })).page)).toBeTruthy();

    const second = new Browser(akamon.url);
    const again = await startAuthorization(second, akamon, client);
    const notice2 = await enterCredentials(second, again.page, account.commonId, account.password);
    const change = await second.submit(notice2, /\/change$/, {});
    expect(change.html).toContain('Choose your new password.');
    const next = 'Renewed-Password-2027';
    const done = await second.submit(change, /\/change$/, { current: account.password, new: next, confirm: next });
    expect(codeFrom(done)).toBeTruthy();
    clock.current = new Date();
  });

  test('after expiry the sign-in goes through the password change; prompt=none gets interaction_required', async () => {
    clock.current = new Date();
    const account = await akamon.createReadyAccount();
    clock.current = new Date(Date.now() + 398 * DAY);
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, client);
    const change = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(change.html).toContain('Your password has expired');
    const silent = await startAuthorization(browser, akamon, client, { prompt: 'none' });
    expect(new URL(silent.page.url).searchParams.get('error')).toBe('interaction_required');
    const next = 'After-Expiry-Pass-2027';
    const done = await browser.submit(change, /\/change$/, { current: account.password, new: next, confirm: next });
    expect(codeFrom(done)).toBeTruthy();
    clock.current = new Date();
  });

  test('with a second factor the password does not expire', async () => {
    clock.current = new Date();
    const account = await akamon.createReadyAccount();
    const { secret, sealed } = akamon.deps.mfa.pendingTotp();
    const { generate } = await import('otplib');
    expect((await akamon.deps.mfa.confirmTotp(account.id, sealed, await generate({ secret }), 'App')).ok).toBe(true);
    clock.current = new Date(Date.now() + 500 * DAY);
    const result = await signIn(new Browser(akamon.url), akamon, client, account);
    expect(result.code).toBeTruthy();
    clock.current = new Date();
  });
});

describe('account information', () => {
  test('shows the Common ID, expiry date, education, recent sign-ins; "sign out everywhere" ends every session and refresh token', async () => {
    clock.current = new Date();
    const account = await akamon.createReadyAccount({ name: 'Info Person' });
    const browser = new Browser(akamon.url);
    const result = await signIn(browser, akamon, client, account);
    const tokens = await redeem(akamon, client, result.code!, result.verifier);
    const home = await browser.visit(`${akamon.url}/account`);
    expect(home.html).toContain(account.commonId);
    expect(home.html).toContain('Password expires');
    expect(home.html).toContain('Recent sign-ins');
    expect(home.html).toMatch(/<td>Portal<\/td><td>127\.0\.0\.1<\/td><td>Signed in<\/td>/);
    expect(home.html).toContain('Not taken yet');

    const out = await browser.submit(home, /\/account\/sign-out-everywhere$/, {});
    expect(new URL(out.url).pathname).toBe('/');
    expect((await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token })).body.error).toBe('invalid_grant');
    const silent = await startAuthorization(browser, akamon, client, { prompt: 'none' });
    expect(new URL(silent.page.url).searchParams.get('error')).toBe('login_required');
    const [audit] = await akamon.deps.audit.list({ accountId: account.id, limit: 1 });
    expect(audit.action).toBe('sessions.ended');
  });
});
