import type { Page } from 'playwright-core';

type Credentials = { commonId: string; password: string };

/** The sign-in pages in a real browser, in any language: the Common ID, then the password, each sent with Enter. */
export async function typeCredentials(page: Page, account: Credentials): Promise<void> {
  await page.locator('input[name="identifier"]').fill(account.commonId);
  await page.locator('input[name="identifier"]').press('Enter');
  await page.locator('input[name="password"]').fill(account.password);
  await page.locator('input[name="password"]').press('Enter');
}

/** Signs in at the account home of the Akamon at `origin` through its pages. */
export async function signInHome(page: Page, origin: string, account: Credentials): Promise<void> {
  await page.goto(`${origin}/account`);
  await typeCredentials(page, account);
  await page.waitForURL(`${origin}/account`);
}
