import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { randomInt } from 'node:crypto';
import fs from 'node:fs/promises';
import type { Browser as ChromiumBrowser } from 'playwright-core';
import type { RunningAkamon } from '../support/akamon.ts';
import { type BrowserWorld, startBrowserWorld } from '../support/browser-world.ts';
import { passkeyOperator } from '../support/console-operator.ts';
import { translator, type Locale } from '../../src/i18n/i18n.ts';

// The console's CSV import in chromium, in English on a laptop and in Japanese on a phone: an
// administrator signs in with a passkey, uploads a file of accounts with a bad row, watches the page
// refresh itself (no script: the strict CSP) until the job has finished, reads every problem of the
// bad row, downloads the report, and takes the initial passwords as letters once.

let world: BrowserWorld;
let akamon: RunningAkamon;
let browser: ChromiumBrowser;
const base = randomInt(100_000, 999_999) * 10_000;
const cid = (n: number) => String(base + n).padStart(10, '0');
/** Rows enough that the job is still running when its page first shows. */
const ROWS = 150;

beforeAll(async () => {
  // WebAuthn needs a domain as relying-party id: the issuer is http://localhost (a secure context).
  world = await startBrowserWorld({ env: { AKAMON_ISSUER: 'http://localhost:{port}' }, chromiumArgs: ['--host-resolver-rules=MAP localhost 127.0.0.1'] });
  ({ akamon, browser } = world);
}, 120_000);

afterAll(() => world?.close());

/** A text as it is read from the page: Japanese pages mark phrase boundaries with <wbr> (src/http/phrase-breaks.ts). */
function named(text: string): RegExp {
  return new RegExp(`^${[...text].map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[\\s\\u200b]*')}$`);
}

async function walk(locale: Locale, viewport: { width: number; height: number }, offset: number) {
  const translate = translator(locale);
  const t = (key: Parameters<typeof translate>[0]) => named(translate(key));
  const context = await browser.newContext({ locale: locale === 'ja' ? 'ja-JP' : 'en-US', viewport, acceptDownloads: true });
  try {
    const page = await context.newPage();
    const violations: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    });
    const admin = await passkeyOperator(akamon, context, page, 'admin', null, 'Import Admin');

    await page.goto(`${akamon.config.issuer}/console/import`);
    await page.locator('#identifier').fill(admin.commonId);
    await page.locator('form:has(#identifier) button[type=submit]').click();
    await page.locator('#password').fill(admin.password);
    await page.locator('form:has(#password) button[type=submit]').click();
    await page.getByRole('button', { name: t('mfa.webauthn_use') }).click();
    await page.getByRole('heading', { level: 1, name: t('import.title') }).waitFor();

    // Enough rows that the page is seen running, and one row with several problems.
    const rows = Array.from({ length: ROWS }, (_, i) => `${cid(offset + i)},Person ${i},student,eng`);
    const csv = ['common_id,name,affiliation,department', ...rows, 'bad,,wizard,eng mech'].join('\n');
    await page.getByLabel(t('import.kind_label')).selectOption('accounts');
    await page.getByLabel(t('import.file_label')).setInputFiles({ name: 'intake.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.getByRole('button', { name: t('import.submit') }).click();
    await page.getByRole('heading', { level: 1, name: t('import.job_title') }).waitFor();
    expect(await page.locator('meta[http-equiv="refresh"]').getAttribute('content')).toBe('2');

    // The page reloads itself (a meta refresh) until the job has finished.
    const finished = translate('import.state_finished', { processed: ROWS + 1, total: ROWS + 1, failed: 1 });
    await page.getByText(named(finished)).waitFor({ timeout: 60_000 });
    expect(await page.locator('meta[http-equiv="refresh"]').count()).toBe(0);
    expect(await page.locator('progress').getAttribute('value')).toBe(String(ROWS + 1));
    const bad = page.locator('tr.import-report__row--failed');
    const problems = await bad.locator('li').allTextContents();
    expect(problems.map((p) => p.replace(/\u200b/g, ''))).toEqual([
      `common_id: ${translate('import.problem_invalid_common_id')}`,
      `name: ${translate('import.problem_invalid_name')}`,
      `affiliation: ${translate('import.problem_invalid_affiliation')}`,
      `department: ${translate('import.problem_invalid_department')}`,
    ]);
    const width = await page.evaluate<{ scroll: number; width: number }>('({ scroll: document.documentElement.scrollWidth, width: window.innerWidth })');
    expect(width.scroll).toBeLessThanOrEqual(width.width);

    // The report, downloaded.
    const [report] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: t('import.download_report') }).click()]);
    expect(report.suggestedFilename()).toMatch(/-report\.csv$/);
    const text = await fs.readFile((await report.path())!, 'utf8');
    expect(text).toContain(`${cid(offset)},created,`);
    expect(text).toContain(`${ROWS + 2},bad,failed,"common_id: the Common ID must be exactly 10 digits`);
    expect(text).toMatch(/bad,failed,"common_id: the Common ID must be exactly 10 digits/);

    // The letters, once.
    const [letters] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: t('import.passwords_letters') }).click()]);
    const html = await fs.readFile((await letters.path())!, 'utf8');
    expect(html.match(/<main class="letter">/g)).toHaveLength(ROWS);
    await page.goto(page.url());
    await page.getByText(t('import.passwords_gone')).waitFor();
    expect(await page.getByRole('button', { name: t('import.passwords_letters') }).count()).toBe(0);
    expect(violations).toEqual([]);
  } finally {
    await context.close();
  }
}

test('an administrator imports accounts in English on a laptop', async () => {
  await walk('en', { width: 1280, height: 900 }, 0);
}, 120_000);

test('and in Japanese on a phone', async () => {
  await walk('ja', { width: 390, height: 844 }, 1000);
}, 120_000);
