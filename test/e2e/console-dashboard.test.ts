import { afterAll, beforeAll, expect, test } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser as ChromiumBrowser, Page } from 'playwright-core';
import type { RunningAkamon } from '../support/akamon.ts';
import { type BrowserWorld, startBrowserWorld } from '../support/browser-world.ts';
import { passkeyOperator } from '../support/console-operator.ts';
import { translator, type Locale } from '../../src/i18n/i18n.ts';

// The ICT office's dashboard in chromium: an administrator signs in to the console with a passkey
// and reads it in English and Japanese, on a laptop and on a phone, with no sideways scrolling; the
// charts are images with names, their numbers are in tables, and a figure downloads as CSV.
// With AKAMON_SCREENSHOTS=1 the pages are saved to docs/console/.

const SCREENSHOTS = process.env.AKAMON_SCREENSHOTS === '1' ? path.resolve('docs/console') : null;
const VIEWPORTS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

let world: BrowserWorld;
let akamon: RunningAkamon;
let browser: ChromiumBrowser;

beforeAll(async () => {
  // WebAuthn needs a domain as relying-party id: the issuer is http://localhost (a secure context).
  world = await startBrowserWorld({ env: { AKAMON_ISSUER: 'http://localhost:{port}' }, chromiumArgs: ['--host-resolver-rules=MAP localhost 127.0.0.1'] });
  ({ akamon, browser } = world);
  if (SCREENSHOTS) fs.mkdirSync(SCREENSHOTS, { recursive: true });
  // Something to draw: accounts of several groups, factors, a failure, a closure, today's snapshot.
  const { deps } = akamon;
  for (const [affiliation, department, kind] of [
    ['student', 'eng/mech', 'totp'],
    ['student', 'lit', null],
    ['faculty', 'sci/chem', 'phone'],
    ['staff', null, null],
  ] as const) {
    const { id, commonId } = await akamon.createAccount({ affiliation, profile: department ? { department } : {} });
    if (kind) await deps.mfaStore.insert({ accountId: id, kind, label: kind });
    await deps.signinLog.record({ accountId: id, clientId: null, ip: null, userAgent: null, result: 'failure', reason: 'wrong_password' });
    if (affiliation === 'staff') await deps.revocations.schedule(commonId, new Date(Date.now() + 40 * 86_400_000), 'contract_end');
  }
  await deps.dashboard.takeSnapshot();
}, 120_000);

afterAll(() => world?.close());

async function fitsWidth(page: Page) {
  const { scroll, width } = await page.evaluate<{ scroll: number; width: number }>('({ scroll: document.documentElement.scrollWidth, width: window.innerWidth })');
  expect(scroll).toBeLessThanOrEqual(width);
}

async function read(locale: Locale) {
  const t = translator(locale);
  const context = await browser.newContext({ locale: locale === 'ja' ? 'ja-JP' : 'en-US', viewport: VIEWPORTS.desktop, acceptDownloads: true });
  try {
    const page = await context.newPage();
    const admin = await passkeyOperator(akamon, context, page, 'admin', null, locale === 'ja' ? '情報 花子' : 'ICT Office');
    await page.goto(`${akamon.config.issuer}/console/dashboard`);
    await page.locator('#identifier').fill(admin.commonId);
    await page.locator('form:has(#identifier) button[type=submit]').click();
    await page.locator('#password').fill(admin.password);
    await page.locator('form:has(#password) button[type=submit]').click();
    // The passkey button (its text carries phrase breaks in Japanese; the virtual key answers).
    await page.locator('button[data-webauthn]').click();
    await page.getByRole('heading', { level: 1 }).filter({ hasText: /MFA/ }).waitFor();
    expect(page.url()).toBe(`${akamon.config.issuer}/console/dashboard`);

    // Every chart is an image with a name, and seven figures each have a CSV link.
    const charts = page.getByRole('img');
    expect(await charts.count()).toBeGreaterThanOrEqual(7);
    for (const name of await charts.evaluateAll((nodes) => nodes.map((n) => n.getAttribute('aria-label') ?? ''))) expect(name.length).toBeGreaterThan(5);
    expect(await page.getByRole('link', { name: t('dashboard.csv') }).count()).toBe(7);

    await fitsWidth(page);
    if (SCREENSHOTS && locale === 'en') await page.screenshot({ path: path.join(SCREENSHOTS, 'dashboard.png'), fullPage: true });
    // Opened, every table of numbers fits the width too, on the laptop and on the phone.
    for (const summary of await page.locator('summary').all()) await summary.click();
    await page
      .getByRole('columnheader', { name: t('dashboard.col_share') })
      .first()
      .waitFor();
    expect(await page.locator('details[open]').count()).toBe(await page.locator('details').count());
    for (const [size, viewport] of Object.entries(VIEWPORTS)) {
      await page.setViewportSize(viewport);
      await fitsWidth(page);
      if (SCREENSHOTS && locale === 'en' && size === 'phone') await page.screenshot({ path: path.join(SCREENSHOTS, 'dashboard-phone.png'), fullPage: true });
    }

    // A CSV link downloads the figure as a file.
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('a[href="/console/dashboard/methods.csv"]').click()]);
    expect(download.suggestedFilename()).toMatch(/^akamon-methods-\d{4}-\d{2}-\d{2}\.csv$/);
    const bytes = fs.readFileSync((await download.path())!);
    expect(bytes.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    expect(bytes.toString('utf8').slice(1).split('\r\n')[0]).toBe('method,accounts');
  } finally {
    await context.close();
  }
}

test('an administrator reads the dashboard in English, on a laptop and a phone', () => read('en'), 120_000);

test('an administrator reads the dashboard in Japanese, on a laptop and a phone', () => read('ja'), 120_000);
