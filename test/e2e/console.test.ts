import { afterAll, beforeAll, expect, test } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser as ChromiumBrowser, Page } from 'playwright-core';
import type { RunningAkamon } from '../support/akamon.ts';
import { type BrowserWorld, startBrowserWorld } from '../support/browser-world.ts';
import { passkeyOperator } from '../support/console-operator.ts';
import { translator, type Locale } from '../../src/i18n/i18n.ts';

// The operators' console in chromium, in English on a laptop and in Japanese on a phone: an office
// operator of one department signs in with a passkey (chromium's virtual authenticator holding the
// same credential Akamon registered), finds an account by its realm-suffixed Common ID, reissues its
// password (the document checked, the printable letter), suspends and reactivates it; and is refused
// an account of another department exactly as one that does not exist.
// With AKAMON_SCREENSHOTS=1 the desktop walk saves its pages to docs/console/.

const REALM = 'utac.u-tokyo.ac.jp';
const SCREENSHOTS = process.env.AKAMON_SCREENSHOTS === '1' ? path.resolve('docs/console') : null;

let world: BrowserWorld;
let akamon: RunningAkamon;
let browser: ChromiumBrowser;

beforeAll(async () => {
  // WebAuthn needs a domain as relying-party id: the issuer is http://localhost (a secure context).
  world = await startBrowserWorld({ env: { AKAMON_ISSUER: 'http://localhost:{port}', AKAMON_REALM_SUFFIX: REALM }, chromiumArgs: ['--host-resolver-rules=MAP localhost 127.0.0.1'] });
  ({ akamon, browser } = world);
  if (SCREENSHOTS) fs.mkdirSync(SCREENSHOTS, { recursive: true });
}, 120_000);

afterAll(() => world?.close());

/** No page of the walk scrolls sideways. */
async function fitsWidth(page: Page) {
  const { scroll, width } = await page.evaluate<{ scroll: number; width: number }>('({ scroll: document.documentElement.scrollWidth, width: window.innerWidth })');
  expect(scroll).toBeLessThanOrEqual(width);
}

async function shot(page: Page, name: string) {
  if (SCREENSHOTS) await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/**
 * A text as it is read from the page: Japanese pages mark phrase boundaries with <wbr>
 * (src/http/phrase-breaks.ts), which the accessible name may carry as a zero-width space.
 */
function named(text: string): RegExp {
  return new RegExp(`^${[...text].map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[\\s\\u200b]*')}$`);
}

async function walk(locale: Locale, viewport: { width: number; height: number }, screenshots: boolean) {
  const translate = translator(locale);
  const t = (key: Parameters<typeof translate>[0]) => named(translate(key));
  const context = await browser.newContext({ locale: locale === 'ja' ? 'ja-JP' : 'en-US', viewport });
  try {
    const page = await context.newPage();
    const desk = await passkeyOperator(akamon, context, page, 'office', { departments: ['eng'], affiliations: [] }, locale === 'ja' ? '窓口 花子' : 'Desk Operator');
    const student = await akamon.createReadyAccount({ name: locale === 'ja' ? '工学 太郎' : 'Taro Kogaku', affiliation: 'student', profile: { department: 'eng/mech' } });
    const outsider = await akamon.createReadyAccount({ name: 'Science Person', affiliation: 'student', profile: { department: 'sci' } });

    // Sign in: Common ID, password, then the passkey (the only method the console accepts).
    await page.goto(`${akamon.config.issuer}/console`);
    await page.locator('#identifier').fill(desk.commonId);
    await page.locator('form:has(#identifier) button[type=submit]').click();
    await page.locator('#password').fill(desk.password);
    await page.locator('form:has(#password) button[type=submit]').click();
    await page.getByRole('button', { name: t('mfa.webauthn_use') }).click();
    await page.getByRole('heading', { level: 1, name: t('console.search_title') }).waitFor();
    await fitsWidth(page);

    // Find the student by the realm-suffixed form.
    await page.getByLabel(t('console.search_label')).fill(`${student.commonId}@${REALM}`);
    await page.getByRole('button', { name: t('console.search') }).click();
    await page.getByRole('link', { name: `${student.commonId}@${REALM}` }).waitFor();
    await fitsWidth(page);
    if (screenshots) await shot(page, 'search');
    await page.getByRole('link', { name: `${student.commonId}@${REALM}` }).click();
    await page.getByRole('heading', { level: 1, name: t('console.account_title') }).waitFor();
    await fitsWidth(page);
    if (screenshots) await shot(page, 'account');

    // Reissue the password: the document checked and a reason, then the letter to print.
    await page.getByRole('link', { name: t('console.reissue_title') }).click();
    await page.getByLabel(t('console.document_label')).selectOption('student_card');
    await page.getByLabel(t('console.reason_label')).fill(locale === 'ja' ? 'パスワード忘れ' : 'forgot the password');
    await fitsWidth(page);
    if (screenshots) await shot(page, 'reissue-confirm');
    await page.getByRole('button', { name: t('console.reissue_title') }).click();
    await page.locator('.letter__password').waitFor();
    const password = ((await page.locator('.letter__password').textContent()) ?? '').replace(/\s/g, '');
    expect((await akamon.deps.passwordSignin.signIn({ commonId: student.commonId, password, ip: '10.0.0.9', userAgent: null, clientId: null })).ok).toBe(true);
    // The letter's own stylesheet applies (allowed by its hash in the CSP): the password is set in its box.
    expect(await page.evaluate<string>("getComputedStyle(document.querySelector('.letter__pw-char')).display")).not.toBe('inline');
    await page.emulateMedia({ media: 'print' });
    if (screenshots) await shot(page, 'letter');
    await page.emulateMedia({ media: 'screen' });
    const [audit] = await akamon.deps.audit.list({ accountId: student.id, limit: 1 });
    expect(audit).toMatchObject({ action: 'password.reissued', actor: `console:${desk.commonId}`, details: { checked: 'student_card' } });

    // Suspend (a reason) and reactivate.
    await page.goto(`${akamon.config.issuer}/console/accounts/${student.commonId}`);
    await page.getByRole('link', { name: t('console.suspend_title') }).click();
    await page.getByLabel(t('console.reason_label')).fill(locale === 'ja' ? '学生証の紛失' : 'lost student card');
    await page.getByRole('button', { name: t('console.suspend_title') }).click();
    await page.getByText(t('console.done_suspended')).waitFor();
    expect((await akamon.deps.accounts.findById(student.id))!.status).toBe('suspended');
    await fitsWidth(page);
    await page.getByRole('button', { name: t('console.reactivate') }).click();
    await page.getByText(t('console.done_reactivated')).waitFor();
    expect((await akamon.deps.accounts.findById(student.id))!.status).toBe('active');

    // Outside the department: not found by search, and its page is the plain 404.
    await page.goto(`${akamon.config.issuer}/console?q=${outsider.commonId}`);
    await page.getByText(t('console.no_results')).waitFor();
    const refused = await page.goto(`${akamon.config.issuer}/console/accounts/${outsider.commonId}`);
    expect(refused!.status()).toBe(404);
    await page.getByText(t('error.not_found')).waitFor();
    await fitsWidth(page);
  } finally {
    await context.close();
  }
}

test('in English on a laptop (1280x800)', () => walk('en', { width: 1280, height: 800 }, true), 120_000);

test('in Japanese on a phone (390x844)', () => walk('ja', { width: 390, height: 844 }, false), 120_000);
