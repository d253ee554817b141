import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { codeFrom, enterCredentials, startAuthorization } from '../support/flows.ts';
import { formatDate } from '../../src/i18n/i18n.ts';

// The MFA rollout in stages, with the clock moved by the test: optional, a warning period with a
// "set up now / later" notice (counted), then required.
const DAY = 24 * 3600 * 1000;
const clock = {
  current: new Date(),
  now() {
    return this.current;
  },
};
let akamon: RunningAkamon;

beforeAll(async () => {
  akamon = await startAkamon({ clock });
});
afterAll(() => akamon.close());

async function signInPage(client: { clientId: string; redirectUri: string }, account: { commonId: string; password: string }, browser = new Browser(akamon.url)) {
  const started = await startAuthorization(browser, akamon, client);
  return { browser, page: await enterCredentials(browser, started.page, account.commonId, account.password) };
}

test('per-client schedule: nothing before the warning, a counted notice during it, required after', async () => {
  const start = Date.now();
  const slack = await akamon.createClient({
    name: 'Slack',
    redirectUris: ['http://127.0.0.1:9/slack'],
    mfaWarningFrom: new Date(start + 10 * DAY).toISOString(),
    mfaRequiredFrom: new Date(start + 30 * DAY).toISOString(),
  });
  const account = await akamon.createReadyAccount();

  clock.current = new Date(start);
  expect(codeFrom((await signInPage(slack, account)).page)).toBeTruthy();

  clock.current = new Date(start + 11 * DAY);
  const { browser, page } = await signInPage(slack, account);
  expect(page.html).toContain('Multi-factor authentication is coming');
  const later = await browser.submit(page, /\/later$/, {});
  expect(codeFrom(later)).toBeTruthy();
  expect((await akamon.deps.accounts.findById(account.id))!.mfa_postpone_count).toBe(1);
  // Silent SSO is never interrupted by the reminder, and it is not shown again the same day.
  expect(codeFrom((await startAuthorization(browser, akamon, slack, { prompt: 'none' })).page)).toBeTruthy();
  expect(codeFrom((await signInPage(slack, account)).page)).toBeTruthy();

  clock.current = new Date(start + 13 * DAY);
  const again = await signInPage(slack, account);
  expect(again.page.html).toContain('Multi-factor authentication is coming');
  const setup = await again.browser.submit(again.page, /\/setup$/, {});
  expect(setup.html).toContain('More information required');
  expect((await akamon.deps.accounts.findById(account.id))!.mfa_required).toBe(true);

  const other = await akamon.createReadyAccount();
  clock.current = new Date(start + 31 * DAY);
  const required = await signInPage(slack, other);
  expect(required.page.html).toContain('More information required');
  const silent = await startAuthorization(required.browser, akamon, slack, { prompt: 'none' });
  expect(new URL(silent.page.url).searchParams.get('error')).toBe('interaction_required');
  const directory = await (await fetch(`${akamon.url}/services`)).text();
  expect(directory).not.toContain('Slack'); // not listed
});

test('a university-wide schedule from the configuration applies to every client', async () => {
  const start = Date.now();
  const wide = await startAkamon({
    clock,
    env: { AKAMON_MFA_WARNING_FROM: new Date(start + DAY).toISOString(), AKAMON_MFA_REQUIRED_FROM: new Date(start + 3 * DAY).toISOString() },
  });
  try {
    const lms = await wide.createClient({ name: 'LMS', listed: true, redirectUris: ['http://127.0.0.1:9/lms'] });
    const account = await wide.createReadyAccount();
    clock.current = new Date(start + 2 * DAY);
    const browser = new Browser(wide.url);
    const started = await startAuthorization(browser, wide, lms);
    expect((await enterCredentials(browser, started.page, account.commonId, account.password)).html).toContain('Multi-factor authentication is coming');
    // Before the day, the directory names it instead of ×.
    const scheduled = await (await fetch(`${wide.url}/services`, { headers: { 'accept-language': 'en' } })).text();
    expect(scheduled).toMatch(new RegExp(`LMS[\\s\\S]*?MFA required from ${formatDate('en', new Date(start + 3 * DAY), wide.config.timeZone)}`));
    expect(scheduled).not.toContain('MFA: ×');
    clock.current = new Date(start + 4 * DAY);
    const next = new Browser(wide.url);
    const later = await startAuthorization(next, wide, lms);
    expect((await enterCredentials(next, later.page, account.commonId, account.password)).html).toContain('More information required');
    expect(await (await fetch(`${wide.url}/services`, { headers: { 'accept-language': 'en' } })).text()).toMatch(/LMS[\s\S]*?MFA: ○/);
  } finally {
    clock.current = new Date();
    await wide.close();
  }
});
