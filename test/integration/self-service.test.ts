import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser, decode } from '../support/browser.ts';
import { chooseMethod, codeFrom, enterCredentials, freshTotpStep, redeem, secretOn, signIn, startAuthorization, tokenRequest } from '../support/flows.ts';

const DAY = 24 * 3600 * 1000;
const clock = {
  current: new Date(),
  now() {
    return this.current;
  },
};
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
    expect(home.html).toContain('<td role="cell" data-label="System">Portal</td><td role="cell" data-label="From (IP address)">127.0.0.1</td><td role="cell" data-label="Result">Signed in</td>');
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

describe('app passwords', () => {
  /** The value attribute of the input named `name` on the page ('' when it has none). */
  const inputValue = (html: string, name: string) => decode(/value="([^"]*)"/.exec(new RegExp(`<input[^>]*name="${name}"[^>]*>`).exec(html)?.[0] ?? '')?.[1] ?? '');

  test('one refused (the cap reached, or a name with a text-direction mark) is said on the account page with its revoke buttons, the name typed kept', async () => {
    clock.current = new Date();
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const home = await enterCredentials(browser, await browser.visit(`${akamon.url}/account`), account.commonId, account.password);
    const { MAX_APP_PASSWORDS } = await import('../../src/account/app-password.service.ts');
    for (let i = 0; i < MAX_APP_PASSWORDS; i += 1) await akamon.deps.appPasswords.create(account.id, `device ${i}`);
    const full = await browser.submit(home, /\/account\/app-passwords$/, { name: 'one more' });
    expect(full.status).toBe(400);
    expect(full.html).toContain('You already have the most app passwords allowed. Revoke one first.');
    // The way out the message names is on the page itself, and the name waits for the retry.
    expect(full.html).toMatch(/action="\/account\/app-passwords\/[^"]+\/revoke"/);
    expect(inputValue(full.html, 'name')).toBe('one more');
    expect(await akamon.deps.appPasswords.list(account.id)).toHaveLength(MAX_APP_PASSWORDS);

    const revoked = await browser.submit(full, /\/account\/app-passwords\/[^/]+\/revoke$/, {});
    const badName = await browser.submit(revoked, /\/account\/app-passwords$/, { name: 'Mail\u200F' });
    expect(badName.status).toBe(400);
    expect(badName.html).toContain('without control or text-direction characters');
    expect(badName.html).toMatch(/<input[^>]*name="name"[^>]*aria-invalid="true"/);
    expect(inputValue(badName.html, 'name')).toBe('Mail\u200F');
    expect(await akamon.deps.appPasswords.list(account.id)).toHaveLength(MAX_APP_PASSWORDS - 1);
  });
});

describe('security info', () => {
  async function homeWithApp() {
    // Two enrolments take this step's and the next step's codes; the step-up later takes the previous one's.
    await freshTotpStep();
    clock.current = new Date();
    const account = await akamon.createReadyAccount();
    const { generate } = await import('otplib');
    const first = akamon.deps.mfa.pendingTotp();
    await akamon.deps.mfa.confirmTotp(account.id, first.sealed, await generate({ secret: first.secret }), 'Phone app');
    const second = akamon.deps.mfa.pendingTotp();
    await akamon.deps.mfa.confirmTotp(account.id, second.sealed, await generate({ secret: second.secret, epoch: Math.floor(Date.now() / 1000) + 30 }), 'Tablet app');
    const browser = new Browser(akamon.url);
    const home = await enterCredentials(browser, await browser.visit(`${akamon.url}/account/security`), account.commonId, account.password);
    return { account, browser, home, secret: first.secret, generate };
  }

  test('lists the methods; choosing the default works; removing one needs a fresh second factor', async () => {
    const { account, browser, home, secret, generate } = await homeWithApp();
    expect(new URL(home.url).pathname).toBe('/account/security');
    expect(home.html).toContain('Phone app');
    expect(home.html).toContain('Tablet app');
    const changed = await browser.submit(home, /\/default$/, {});
    expect(changed.html).toContain('The default method was changed.');
    expect((await akamon.deps.mfa.factors(account.id))[0].label).toBe('Tablet app');

    // The sign-in showed only a password: removing a method sends the person through a fresh MFA sign-in first.
    const stepUp = await browser.submit(changed, /\/remove$/, {});
    expect(stepUp.html).toContain('Verify your identity');
    // The two enrolments used the current and the next time step: the previous one is still free.
    const back = await browser.submit(stepUp, /\/totp$/, { code: await generate({ secret, epoch: Math.floor(Date.now() / 1000) - 30 }) });
    expect(new URL(back.url).pathname).toBe('/account/security');
    // Removing asks first, on a page of its own; keeping the method leaves it.
    const confirm = await browser.submit(back, /\/remove$/, {});
    expect(confirm.status).toBe(200);
    expect(confirm.html).toMatch(/Remove (Phone|Tablet) app\?/);
    expect(confirm.html).toContain('href="/account/security">Keep it</a>');
    expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(2);
    const removed = await browser.submit(confirm, /\/remove$/, {});
    expect(removed.html).toContain('The method was removed.');
    expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(1);
  });

  test('changes the password with every rule named; the page comes back through a new sign-in (SSO)', async () => {
    clock.current = new Date();
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const page = await enterCredentials(browser, await browser.visit(`${akamon.url}/account/security`), account.commonId, account.password);
    const broken = await browser.submit(page, /\/account\/security\/password$/, { current: account.password, new: 'short', confirm: 'short' });
    expect(broken.status).toBe(400);
    expect(broken.html).toContain('It is too short');
    const wrong = await browser.submit(broken, /\/account\/security\/password$/, { current: 'Not-The-Password-1', new: 'Security-Page-Pass-9', confirm: 'Security-Page-Pass-9' });
    expect(wrong.html).toContain('The current password is incorrect.');
    const done = await browser.submit(wrong, /\/account\/security\/password$/, { current: account.password, new: 'Security-Page-Pass-9', confirm: 'Security-Page-Pass-9' });
    expect(new URL(done.url).pathname).toBe('/account/security');
    expect(done.html).toContain('Security info');
    const ok = await akamon.deps.passwordSignin.signIn({ commonId: account.commonId, password: 'Security-Page-Pass-9', ip: '127.0.0.7', userAgent: null, clientId: null });
    expect(ok.ok).toBe(true);
  });

  test('changes the recovery email with a code to the new address, and tells the old one', async () => {
    clock.current = new Date();
    const account = await akamon.createReadyAccount();
    await akamon.deps.accounts.setRecoveryEmail(account.id, `old-${account.commonId}@example.com`);
    const browser = new Browser(akamon.url);
    const page = await enterCredentials(browser, await browser.visit(`${akamon.url}/account/security`), account.commonId, account.password);
    const next = `new-${account.commonId}@example.com`;
    const sent = await browser.submit(page, /\/account\/security\/email$/, { email: next });
    expect(sent.html).toContain(`was sent to ${next}`);
    const { mailedCode } = await import('../support/smtp-sink.ts');
    const confirmed = await browser.submit(sent, /\/email\/confirm$/, { code: mailedCode(akamon.mails, next) });
    expect(confirmed.html).toContain('Your recovery email was changed.');
    expect((await akamon.deps.accounts.findById(account.id))!.recovery_email).toBe(next);
    expect(akamon.mails.some((m) => m.to.includes(`old-${account.commonId}@example.com`) && /was just changed/.test(m.raw.replace(/=\r?\n/g, '')))).toBe(true);
  });
});

test('security info adds another sign-in method after a fresh second factor', async () => {
  clock.current = new Date();
  const account = await akamon.createReadyAccount();
  const { generate } = await import('otplib');
  const first = akamon.deps.mfa.pendingTotp();
  await akamon.deps.mfa.confirmTotp(account.id, first.sealed, await generate({ secret: first.secret }), 'Phone app');
  await akamon.deps.accounts.setRecoveryEmail(account.id, `add-${account.commonId}@example.com`);
  const browser = new Browser(akamon.url);
  const page = await enterCredentials(browser, await browser.visit(`${akamon.url}/account/security`), account.commonId, account.password);
  const addUrl = /href="(\/account\/login\?add=1[^"]*)"/.exec(page.html)![1].replace(/&amp;/g, '&');
  const verify = await browser.visit(`${akamon.url}${addUrl}`);
  expect(verify.html).toContain('Verify your identity');
  const chooser = await browser.submit(verify, /\/totp$/, { code: await generate({ secret: first.secret, epoch: Math.floor(Date.now() / 1000) + 30 }) });
  // Worded for a person who has a method already, with Email among the choices.
  expect(chooser.html).toContain('Add a sign-in method');
  expect(chooser.html).toContain('You already use: Authenticator app.');
  expect(chooser.html).not.toContain('More information required');
  expect([...chooser.html.matchAll(/name="method" value="([a-z]+)"/g)].map((m) => m[1])).toEqual(['app', 'key', 'phone', 'email']);
  const enrol = await chooseMethod(browser, chooser);
  expect(enrol.html).not.toContain('Step 1 of');
  const finish = await browser.submit(enrol, /\/totp$/, { code: await generate({ secret: secretOn(enrol), epoch: Math.floor(Date.now() / 1000) - 30 }) });
  // Adding a method asks for nothing more: no recovery email or app password pages.
  expect(finish.html).toContain('Sign-in method added');
  const back = await browser.submit(finish, /\/finish$/, {});
  expect(new URL(back.url).pathname).toBe('/account/security');
  expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(2);
});

test('"Add a sign-in method" offers Email: a new recovery address confirmed by its code, and the old one told', async () => {
  clock.current = new Date();
  const account = await akamon.createReadyAccount();
  const { generate } = await import('otplib');
  const first = akamon.deps.mfa.pendingTotp();
  await akamon.deps.mfa.confirmTotp(account.id, first.sealed, await generate({ secret: first.secret }), 'Phone app');
  const old = `was-${account.commonId}@example.com`;
  await akamon.deps.accounts.setRecoveryEmail(account.id, old);
  const browser = new Browser(akamon.url);
  const page = await enterCredentials(browser, await browser.visit(`${akamon.url}/account/security`), account.commonId, account.password);
  const addUrl = /href="(\/account\/login\?add=1[^"]*)"/.exec(page.html)![1].replace(/&amp;/g, '&');
  const verify = await browser.visit(`${akamon.url}${addUrl}`);
  const chooser = await browser.submit(verify, /\/totp$/, { code: await generate({ secret: first.secret, epoch: Math.floor(Date.now() / 1000) + 30 }) });
  const emailPage = await chooseMethod(browser, chooser, 'email');
  expect(emailPage.html).toContain(`Your recovery email now: ${old}`);
  const next = `now-${account.commonId}@example.com`;
  const sent = await browser.submit(emailPage, /\/email_send$/, { email: next });
  const { mailedCode } = await import('../support/smtp-sink.ts');
  const saved = await browser.submit(sent, /\/email_confirm$/, { code: mailedCode(akamon.mails, next) });
  expect(saved.html).toContain('Recovery email saved');
  expect(saved.html).toContain(`Password reset codes will go to ${next}`);
  expect((await akamon.deps.accounts.findById(account.id))!.recovery_email).toBe(next);
  expect(akamon.mails.some((m) => m.to.includes(old) && /was just changed/.test(m.raw.replace(/=\r?\n/g, '')))).toBe(true);
  const back = await browser.submit(saved, /\/finish$/, {});
  expect(new URL(back.url).pathname).toBe('/account/security');
  // No factor was added, and the audit says what changed.
  expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(1);
  expect((await akamon.deps.audit.list({ accountId: account.id, limit: 5 })).map((e) => e.action)).toContain('recovery_email.changed');
});

test('other clients cannot start the add-a-method enrolment', async () => {
  clock.current = new Date();
  const account = await akamon.createReadyAccount();
  const result = await signIn(new Browser(akamon.url), akamon, client, account, { akamon_add_factor: '1' });
  expect(result.code).toBeTruthy();
  expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(0);
});
