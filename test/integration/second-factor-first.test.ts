import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { generate } from 'otplib';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser, type Page } from '../support/browser.ts';
import { chooseMethod, codeFrom, enterCredentials, finishEnrolment, redeem, secretOn, startAuthorization } from '../support/flows.ts';

/**
 * Guards issue 13 point 3: a password from a letter, a help desk or the ID-card recovery proves the
 * paper, not the person. On an account with a second factor, "Verify your identity" comes before
 * that password may be replaced; an account without one changes it and then enrols where MFA is
 * required.
 */
let akamon: RunningAkamon;
let library: Awaited<ReturnType<RunningAkamon['createClient']>>;

beforeAll(async () => {
  akamon = await startAkamon();
  library = await akamon.createClient({ name: 'Library', redirectUris: ['http://127.0.0.1:9/library'] });
});
afterAll(() => akamon.close());

const claimsOf = (idToken: string) => JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString());
const NEW_PASSWORD = 'Second-Factor-First-27';

/** An account with an authenticator app (registered a time step ago, so the current step is free). */
async function withAuthenticator(account: { id: string }): Promise<string> {
  const pending = akamon.deps.mfa.pendingTotp();
  const confirmed = await akamon.deps.mfa.confirmTotp(account.id, pending.sealed, await generate({ secret: pending.secret, epoch: Math.floor(Date.now() / 1000) - 30 }), 'Phone app');
  expect(confirmed.ok).toBe(true);
  return pending.secret;
}

/** Posts the password-change form of this interaction directly, as a forged or replayed form would. */
async function postChange(browser: Browser, page: Page, current: string): Promise<Page> {
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.html)![1];
  const interaction = /\/interaction\/[^/?]+/.exec(page.url)![0];
  return browser.visit(`${akamon.url}${interaction}/change`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf, current, new: NEW_PASSWORD, confirm: NEW_PASSWORD }),
  });
}

describe('an account with a second factor', () => {
  test.each([
    ['reissued by the office', 'reissue'],
    ['initial, with a factor registered before the first sign-in', 'initial'],
  ])('a password %s leads to "Verify your identity" first, and only then to the new password', async (_label, kind) => {
    const created = await akamon.createAccount();
    const secret = await withAuthenticator(created);
    const letter = kind === 'reissue' ? (await akamon.deps.accountService.reissuePassword(created.commonId, await akamon.deps.accountService.initialPassword())).initialPassword : created.password;
    const before = (await akamon.deps.accounts.findById(created.id))!;
    expect(before.must_change_password).toBe(true);

    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, library);
    const verify = await enterCredentials(browser, started.page, created.commonId, letter);
    expect(verify.status).toBe(200);
    expect(verify.html).toContain('Verify your identity');
    expect(verify.html).not.toContain('Choose a new password');

    // The letter alone cannot set the password: the change form of this interaction is not open yet.
    const forged = await postChange(browser, verify, letter);
    expect(forged.status).toBe(400);
    expect(forged.html).toContain('This sign-in page has expired');
    expect((await akamon.deps.accounts.findById(created.id))!.password_hash).toBe(before.password_hash);
    expect((await akamon.deps.audit.list({ accountId: created.id, limit: 10 })).map((e) => e.action)).not.toContain('password.changed');

    // A wrong code keeps the person at the second factor.
    const wrong = await browser.submit(verify, /\/totp$/, { code: '000000' });
    expect(wrong.status).toBe(400);
    expect(wrong.html).toContain('Verify your identity');

    const change = await browser.submit(wrong, /\/totp$/, { code: await generate({ secret }) });
    expect(change.html).toContain('Choose a new password');
    const done = await browser.submit(change, /\/change$/, { current: letter, new: NEW_PASSWORD, confirm: NEW_PASSWORD });
    const tokens = await redeem(akamon, library, codeFrom(done), started.verifier);
    expect(tokens.status).toBe(200);
    expect(claimsOf(tokens.body.id_token).amr).toEqual(['pwd', 'otp']);
    const after = (await akamon.deps.accounts.findById(created.id))!;
    expect(after.must_change_password).toBe(false);
    expect(after.password_hash).not.toBe(before.password_hash);
    expect((await akamon.deps.audit.list({ accountId: created.id, limit: 10 })).find((e) => e.action === 'password.changed')).toMatchObject({ actor: 'self' });
  });

  test('a letter password alone signs nobody in: a silent authorization meanwhile gets login_required, and nothing changes', async () => {
    const created = await akamon.createAccount();
    await withAuthenticator(created);
    const browser = new Browser(akamon.url);
    // The letter password is right: the sign-in stops at the second factor, with no session yet.
    const started = await startAuthorization(browser, akamon, library);
    const verify = await enterCredentials(browser, started.page, created.commonId, created.password);
    expect(verify.html).toContain('Verify your identity');
    const silent = await startAuthorization(browser, akamon, library, { prompt: 'none' });
    expect(new URL(silent.page.url).searchParams.get('error')).toBe('login_required');
    expect((await akamon.deps.accounts.findById(created.id))!.must_change_password).toBe(true);
  });
});

describe('an account without a second factor', () => {
  test('changes the initial password first, then enrols where MFA is required', async () => {
    const created = await akamon.createAccount();
    await akamon.deps.accountService.setMfaRequired(created.commonId, true);
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, library);
    const change = await enterCredentials(browser, started.page, created.commonId, created.password);
    expect(change.html).toContain('Choose a new password');
    const enrol = await browser.submit(change, /\/change$/, { current: created.password, new: NEW_PASSWORD, confirm: NEW_PASSWORD });
    expect(enrol.html).toContain('More information required');
    expect((await akamon.deps.accounts.findById(created.id))!.must_change_password).toBe(false);
    const app = await chooseMethod(browser, enrol);
    const done = await finishEnrolment(browser, akamon, await browser.submit(app, /\/totp$/, { code: await generate({ secret: secretOn(app) }) }));
    const tokens = await redeem(akamon, library, codeFrom(done), started.verifier);
    expect(claimsOf(tokens.body.id_token).amr).toEqual(['pwd', 'otp']);
  });
});
