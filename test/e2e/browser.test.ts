import { describe, expect, test } from '@jest/globals';
import type { Browser as ChromiumBrowser } from 'playwright-core';
import type { RunningAkamon } from '../support/akamon.ts';
import { browserWorldForFile } from '../support/browser-world.ts';
import { mailedCode } from '../support/smtp-sink.ts';

// One real browser (Debian's chromium, driven by playwright-core) through the newcomer's first
// sign-in at Akamon's own account home: initial password, forced change, then the account page.

const SCREENSHOT = '/tmp/akamon-password-change.png';

let akamon: RunningAkamon;
let browser: ChromiumBrowser;
browserWorldForFile((world) => ({ akamon, browser } = world));

describe('real browser', () => {
  test('first sign-in with an initial password at the account home: change it, then see the account', async () => {
    const account = await akamon.createAccount({ name: 'Hanako Todai' });
    const before = await akamon.deps.accounts.findById(account.id);
    expect(before?.must_change_password).toBe(true);

    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'en-US', deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    try {
      const page = await context.newPage();
      await page.goto(`${akamon.url}/account`);

      // /account -> /account/login -> /auth -> /interaction/<uid>: the identifier page.
      await page.waitForURL(/\/interaction\/[^/]+$/);
      await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Sign in');
      const identifier = page.getByLabel('Common ID');
      // Keyboard only: the identifier field has the focus, Tab reaches Continue.
      await expect(identifier.evaluate((el) => el === el.ownerDocument.activeElement)).resolves.toBe(true);
      await page.keyboard.type(account.commonId);
      await expect(identifier.inputValue()).resolves.toBe(account.commonId);
      await page.keyboard.press('Tab');
      const focused = await page.evaluate<{ tag?: string; text?: string; type?: string }>(
        '({ tag: document.activeElement?.tagName, text: document.activeElement?.textContent?.trim(), type: document.activeElement?.type })',
      );
      expect(focused).toEqual({ tag: 'BUTTON', text: 'Continue', type: 'submit' });
      await page.keyboard.press('Enter');

      // The password page shows whose password is asked for, at the interaction's address (not the identifier form's).
      const password = page.getByLabel('Password', { exact: true });
      await password.waitFor();
      await page.waitForURL(/\/interaction\/[^/]+$/);
      await expect(page.locator('.account-chip__id').textContent()).resolves.toBe(account.commonId);
      await expect(password.evaluate((el) => el === el.ownerDocument.activeElement)).resolves.toBe(true);
      await password.fill(account.password);
      await page.getByRole('button', { name: 'Sign in' }).click();

      // Forced change of the initial password.
      await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
      expect(page.url()).toMatch(/\/interaction\//);
      await expect(page.getByText('You signed in with a password that was issued to you').isVisible()).resolves.toBe(true);
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
      expect(overflow).toBeLessThanOrEqual(0);

      await page.getByLabel('Current password').fill(account.password);
      await page.getByLabel('New password', { exact: true }).fill('Akamon-Gate-2026x');
      await page.getByLabel('Confirm new password').fill('Akamon-Gate-2026x');
      await page.getByRole('button', { name: 'Change password and continue' }).click();

      // Back at the account home, signed in.
      await page.waitForURL(`${akamon.url}/account`);
      await page.getByRole('heading', { name: 'Your account' }).waitFor();
      await expect(page.locator('main').textContent()).resolves.toContain('Hanako Todai');
      await expect(page.locator('main').textContent()).resolves.toContain(account.commonId);
      await expect(page.getByRole('button', { name: 'Sign out', exact: true }).isVisible()).resolves.toBe(true);

      const after = await akamon.deps.accounts.findById(account.id);
      expect(after?.must_change_password).toBe(false);
      expect(new Date(after!.password_set_at).getTime()).toBeGreaterThanOrEqual(new Date(before!.password_set_at).getTime());
    } catch (error) {
      process.stderr.write(`Akamon log (last 20 lines):\n${akamon.logs.slice(-20).join('')}`);
      throw error;
    } finally {
      await context.close();
    }
  }, 120_000);

  test('the whole forgotten-password flow in a real browser: captcha solved by the page, mailed code, new password', async () => {
    const account = await akamon.createReadyAccount({ name: 'Reset Person' });
    const email = `browser-reset-${account.commonId}@example.com`;
    await akamon.deps.accounts.setRecoveryEmail(account.id, email);
    const context = await browser.newContext({ locale: 'en-US' });
    try {
      const page = await context.newPage();
      await page.goto(`${akamon.url}/account`);
      await page.getByRole('link', { name: 'Forgot your password?' }).click();
      await page.getByRole('heading', { level: 1, name: 'Reset your password' }).waitFor();
      await page.getByLabel('Common ID').fill(account.commonId);
      const send = page.getByRole('button', { name: 'Send a code' });
      // The page's own script solves the proof-of-work and only then enables the button.
      await send.and(page.locator(':enabled')).waitFor({ timeout: 30_000 });
      await send.click();
      await page.getByRole('heading', { level: 1, name: 'Check your email' }).waitFor();
      await page.getByLabel('6-digit code').fill(mailedCode(akamon.mails, email));
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.getByRole('heading', { level: 1, name: 'Choose a new password' }).waitFor();
      await page.getByLabel('New password', { exact: true }).fill('Browser-Reset-2026x');
      await page.getByLabel('Confirm new password').fill('Browser-Reset-2026x');
      await page.getByRole('button', { name: 'Set the new password' }).click();
      await page.getByRole('heading', { level: 1, name: 'Your password was changed' }).waitFor();
      const after = await akamon.deps.passwordSignin.signIn({ commonId: account.commonId, password: 'Browser-Reset-2026x', ip: '127.0.0.9', userAgent: null, clientId: null });
      expect(after.ok).toBe(true);
    } finally {
      await context.close();
    }
  }, 120_000);
});
