import { describe, expect, test } from '@jest/globals';
import { generate } from 'otplib';
import type { Browser as ChromiumBrowser, BrowserContext, Page } from 'playwright-core';
import type { RunningAkamon } from '../support/akamon.ts';
import { authorizeUrl, pkce } from '../support/browser.ts';
import { browserWorldForFile } from '../support/browser-world.ts';
import { signInHome, typeCredentials } from '../support/page-sign-in.ts';
import { mailedCode } from '../support/smtp-sink.ts';

// A newcomer on a 375 px phone walking Akamon's side paths (forgotten password, lost phone, a
// cancelled set-up, a form left open too long, the language switch). Each test is a place where a
// walk-through found the person stuck, misled or sent somewhere unexpected, and each failed before
// its fix: the language switch and a reload of a page that answered a form led to a bare 405 (or
// made a second app password), an emailed code was blamed on the phone's clock, a refused Common ID
// was cleared, "two ways back" showed one, a cancelled set-up lost the account home, the recovery
// address was prefilled with the university's own, and the stale-form page gave advice that failed.

let akamon: RunningAkamon;
let browser: ChromiumBrowser;
let rpOrigin: string;
browserWorldForFile((world) => ({ akamon, browser, relyingPartyOrigin: rpOrigin } = world));

const PHONE = { viewport: { width: 375, height: 812 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true } as const;

const totp = (secret: string) => generate({ secret, epoch: Math.floor(Date.now() / 1000) });

/** A phone in `locale`, closed after `walk` whatever happens. */
async function onPhone(locale: string, walk: (page: Page, context: BrowserContext) => Promise<void>): Promise<void> {
  const context = await browser.newContext({ ...PHONE, locale });
  try {
    await walk(await context.newPage(), context);
  } finally {
    await context.close();
  }
}

/** What the person sees: the heading, the main text, the links, and whether the page scrolls sideways. */
function seen(page: Page) {
  return page.evaluate<{ h1: string; text: string; links: string[]; overflow: number }>(`(() => ({
    h1: document.querySelector('h1')?.textContent?.trim() ?? '',
    text: (document.querySelector('main') ?? document.body).innerText,
    links: [...document.querySelectorAll('main a')].map((a) => a.getAttribute('href')),
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
  }))()`);
}

/** Runs `click` and returns the status of the page the browser lands on (after redirects). */
async function statusAfter(page: Page, click: () => Promise<void>): Promise<number> {
  const landed = page.waitForResponse((r) => r.request().isNavigationRequest() && (r.status() < 300 || r.status() >= 400));
  await click();
  const response = await landed;
  await page.waitForLoadState();
  return response.status();
}

/** /recover up to the emailed-code page, the captcha solved by the page's own script. */
async function reachResetCodePage(page: Page, commonId: string): Promise<void> {
  await page.goto(`${akamon.url}/recover`);
  await page.locator('input[name="identifier"]').fill(commonId);
  const send = page.locator('main form button[type=submit]');
  await send.and(page.locator(':enabled')).waitFor({ timeout: 30_000 });
  await send.click();
  await page.locator('input[name="code"]').waitFor();
}

describe('forgotten password on a phone', () => {
  test('the language switch on the emailed-code page leads to that page in the other language, not to "Method Not Allowed"', async () => {
    const account = await akamon.createReadyAccount();
    await akamon.deps.accounts.setRecoveryEmail(account.id, `lang-${account.commonId}@example.com`);
    await onPhone('ja-JP', async (page) => {
      await reachResetCodePage(page, account.commonId);
      const status = await statusAfter(page, () => page.locator('a.lang-switch').click());
      const now = await seen(page);
      // It was: /lang?back=/recover/start redirects to a GET of the form's POST-only address, a bare 405 text.
      expect({ status, h1: now.h1 }).toEqual({ status: 200, h1: 'Check your email' });
      expect(now.overflow).toBeLessThanOrEqual(0);
    });
  }, 120_000);

  test('the address of a reset form opened on its own (a reload after the flow, a shared link) answers a page with a way on', async () => {
    await onPhone('ja-JP', async (page) => {
      const response = await page.goto(`${akamon.url}/recover/start`);
      const now = await seen(page);
      // It was 405 with the plain text "Method Not Allowed": English, no layout, no link anywhere.
      // Now the reset's start page (no flow is under way in this browser), ready to fill in.
      expect(now.text).not.toContain('Method Not Allowed');
      expect([response?.status(), new URL(page.url()).pathname]).toEqual([200, '/recover']);
      await page.locator('input[name="identifier"]').waitFor();
    });
  });

  test('a mistyped emailed reset code is not blamed on the clock of the phone', async () => {
    const account = await akamon.createReadyAccount();
    await akamon.deps.accounts.setRecoveryEmail(account.id, `code-${account.commonId}@example.com`);
    await onPhone('en-US', async (page) => {
      await reachResetCodePage(page, account.commonId);
      await page.locator('input[name="code"]').fill('000000');
      const status = await statusAfter(page, () => page.locator('main form button[type=submit]').click());
      expect(status).toBe(400);
      const alert = (await page.getByRole('alert').first().textContent()) ?? '';
      // It was: "That code is not correct. Check the time on your phone and enter the newest code."
      // (the authenticator-app message) for a code that came by email, where the clock plays no part.
      expect(alert).toContain('not correct');
      expect(alert).not.toMatch(/time on your phone/);
    });
  }, 120_000);

  test('a refused Common ID on the reset page stays in the field to be corrected', async () => {
    await onPhone('en-US', async (page) => {
      await page.goto(`${akamon.url}/recover`);
      await page.locator('input[name="identifier"]').fill('0123456789x');
      const send = page.locator('main form button[type=submit]');
      await send.and(page.locator(':enabled')).waitFor({ timeout: 30_000 });
      const status = await statusAfter(page, () => send.click());
      expect(status).toBe(400);
      await expect(page.getByRole('alert').textContent()).resolves.toMatch(/Common ID/);
      // It was: the field comes back empty, so the person retypes all of it on a phone keyboard.
      await expect(page.locator('input[name="identifier"]').inputValue()).resolves.toBe('0123456789x');
    });
  }, 120_000);
});

describe('forgotten password, finished', () => {
  test('reloading "Your password was changed" does not tell the person the reset expired', async () => {
    const account = await akamon.createReadyAccount();
    const email = `done-${account.commonId}@example.com`;
    await akamon.deps.accounts.setRecoveryEmail(account.id, email);
    await onPhone('en-US', async (page) => {
      await reachResetCodePage(page, account.commonId);
      await page.locator('input[name="code"]').fill(mailedCode(akamon.mails, email));
      await page.locator('main form button[type=submit]').click();
      await page.locator('input[name="new"]').fill('Browser-Reset-2026x');
      await page.locator('input[name="confirm"]').fill('Browser-Reset-2026x');
      await page.locator('main form button[type=submit]').click();
      await page.getByRole('heading', { level: 1, name: 'Your password was changed' }).waitFor();
      // A phone reloads a page when the person comes back to the browser tab, or they pull to refresh.
      const again = await page.reload();
      const now = await seen(page);
      // It was: 400, "Reset your password ... This reset has expired or was already used. Start again."
      // though the new password is set: the person believes the reset failed and starts another.
      expect(now.text).not.toMatch(/expired or was already used/);
      expect(again?.status()).toBe(200);
    });
  }, 120_000);
});

describe('Security info on a phone', () => {
  test('the language switch after a refused password change leads to Security info, not to "Method Not Allowed"', async () => {
    const account = await akamon.createReadyAccount();
    await onPhone('en-US', async (page) => {
      await signInHome(page, akamon.url, account);
      await page.goto(`${akamon.url}/account/security`);
      await page.locator('input[name="current"]').fill('Not-My-Password-1');
      await page.locator('input[name="new"]').fill('Another-Pass-2026x');
      await page.locator('input[name="confirm"]').fill('Another-Pass-2026x');
      expect(await statusAfter(page, () => page.getByRole('button', { name: 'Change password' }).click())).toBe(400);
      const status = await statusAfter(page, () => page.locator('a.lang-switch').click());
      const now = await seen(page);
      expect({ status, h1: now.h1 }).toEqual({ status: 200, h1: 'セキュリティ情報' });
    });
  }, 120_000);
});

describe('app passwords on a phone', () => {
  test('reloading the page that shows a new app password does not make a second one', async () => {
    const account = await akamon.createReadyAccount();
    await onPhone('en-US', async (page) => {
      await signInHome(page, akamon.url, account);
      await page.locator('input[name="name"]').fill('Mail on my laptop');
      await page.getByRole('button', { name: 'Create an app password' }).click();
      await page.getByText('Copy it now').waitFor();
      // The page is the answer to the POST (/account/app-passwords): a reload sends the form again.
      await page.reload();
      await page.waitForLoadState();
      // It was: a second "Mail on my laptop" app password is made (and shown) on each reload.
      await expect(page.locator('form[action$="/revoke"]').count()).resolves.toBe(1);
    });
  }, 120_000);
});

describe('a lost phone', () => {
  test('"Can\'t use your sign-in methods?" promises only the ways back it shows', async () => {
    const account = await akamon.createReadyAccount();
    const { secret, sealed } = akamon.deps.mfa.pendingTotp();
    expect((await akamon.deps.mfa.confirmTotp(account.id, sealed, await totp(secret), 'App')).ok).toBe(true);
    // As after a set-up through the pages: the account asks for its second factor everywhere.
    await akamon.deps.accountService.setMfaRequired(account.commonId, true);
    await onPhone('en-US', async (page) => {
      await page.goto(`${akamon.url}/account`);
      await typeCredentials(page, account);
      await page.getByRole('link', { name: "I can't use any of these methods" }).click();
      await page.getByRole('heading', { level: 1, name: "Can't use your sign-in methods?" }).waitFor();
      const ways = await page.locator('main h2').count();
      const lead = (await page.locator('main .lead').textContent()) ?? '';
      // It was, without identity verification configured: "there are two ways back" above one way (the office).
      expect({ ways, saysTwo: /two ways/.test(lead) }).not.toEqual({ ways: 1, saysTwo: true });
    });
  }, 120_000);
});

describe('setting up MFA from the account home', () => {
  test('Cancel on the recovery-email step, after the app was added, goes back to the account home', async () => {
    const account = await akamon.createReadyAccount();
    await onPhone('en-US', async (page) => {
      await signInHome(page, akamon.url, account);
      await page.getByRole('button', { name: 'Start using multi-factor authentication' }).click();
      await page.getByRole('button', { name: 'Next' }).click();
      const secret = ((await page.locator('.secret-key code').textContent()) ?? '').replace(/\s/g, '');
      await page.locator('input[name="code"]').fill(await totp(secret));
      await page.getByRole('button', { name: 'Confirm and continue' }).click();
      await page.getByRole('heading', { level: 1, name: 'Add a recovery email' }).waitFor();
      // The only way past this step without a personal address is Cancel; the app is kept.
      await page.getByRole('button', { name: 'Cancel' }).click();
      await page.waitForLoadState();
      expect((await akamon.deps.mfa.factors(account.id)).length).toBe(1);
      // It was: the generic landing page "/" ("The university sign-in service..."), nothing about the app just added.
      expect(page.url()).toBe(`${akamon.url}/account`);
    });
  }, 120_000);
});

describe('MFA demanded by a relying party, account without a factor', () => {
  test('the recovery-email step does not offer the university address it tells the person not to use', async () => {
    const account = await akamon.createReadyAccount();
    const client = await akamon.createClient({ name: 'Grades', nameJa: '成績システム', redirectUris: [`${rpOrigin}/callback`], requireMfa: true });
    await onPhone('ja-JP', async (page) => {
      await page.goto(authorizeUrl(akamon.url, { client_id: client.clientId, redirect_uri: client.redirectUri, code_challenge: pkce().challenge, code_challenge_method: 'S256' }));
      await typeCredentials(page, account);
      await page.locator('input[name="method"]').first().waitFor();
      await page.locator('main form button[type=submit]').first().click();
      const secret = ((await page.locator('.secret-key code').textContent()) ?? '').replace(/\s/g, '');
      await page.locator('input[name="code"]').fill(await totp(secret));
      await page.locator('main form button[type=submit]').first().click();
      await page.locator('input[name="email"]').waitFor();
      const lead = (await page.locator('main .lead').textContent()) ?? '';
      expect(lead).toContain('大学にサインインしなくても読めるアドレス');
      // It was: prefilled with the university-registered address (<id>@mail.example.ac.jp), one tap from
      // becoming the "recovery" address, the one mailbox a person locked out of the university cannot read.
      await expect(page.locator('input[name="email"]').inputValue()).resolves.not.toBe(`${account.commonId}@mail.example.ac.jp`);
    });
  }, 120_000);
});

describe('a form left open too long', () => {
  test("the stale-form page's advice (go back, reload, send again) brings the sign-in through", async () => {
    const account = await akamon.createReadyAccount();
    const client = await akamon.createClient({ name: 'Course Registration', redirectUris: [`${rpOrigin}/callback`] });
    await onPhone('en-US', async (page) => {
      await page.goto(authorizeUrl(akamon.url, { client_id: client.clientId, redirect_uri: client.redirectUri, code_challenge: pkce().challenge, code_challenge_method: 'S256' }));
      await page.locator('input[name="identifier"]').fill(account.commonId);
      await page.locator('input[name="identifier"]').press('Enter');
      await page.locator('input[name="password"]').fill(account.password);
      // The form's token no longer matches (it sat open while the browser's token changed).
      await page.locator('input[name="_csrf"]').evaluate((input) => input.setAttribute('value', 'stale'));
      expect(await statusAfter(page, () => page.locator('input[name="password"]').press('Enter'))).toBe(403);
      await expect(page.locator('main').textContent()).resolves.toContain('Go back to the page with the form, reload it, and send the form again');
      // It said "Reload the page", which sent the same stale form again: 403 forever.
      await page.goBack();
      await page.reload();
      await page.locator('input[name="password"]').fill(account.password);
      await page.locator('input[name="password"]').press('Enter');
      await page.waitForURL((url) => url.href.startsWith(`${rpOrigin}/callback`));
      expect(new URL(page.url()).searchParams.get('code')).toBeTruthy();
    });
  }, 120_000);
});

describe('a form refused for what was pasted into it', () => {
  // Found by a walk-through: the error page led to the start page. Its way back comes from the
  // browser's Referer, which a real browser sends only because pages say Referrer-Policy: same-origin.
  test('a Common ID pasted with a tab: the error page leads back to the form in a real browser', async () => {
    await onPhone('en', async (page) => {
      await page.goto(`${akamon.url}/recover`);
      await page.locator('input[name="identifier"]').evaluate((input) => {
        (input as unknown as { value: string }).value = '0123\t456789';
      });
      const send = page.locator('main form button[type=submit]');
      await send.and(page.locator(':enabled')).waitFor({ timeout: 30_000 });
      expect(await statusAfter(page, () => send.click())).toBe(400);
      expect((await seen(page)).links).toContain('/recover');
    });
  }, 60_000);
});
