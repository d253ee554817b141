import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { generate } from 'otplib';
import type { Browser as ChromiumBrowser, Page } from 'playwright-core';
import type { RunningAkamon } from '../support/akamon.ts';
import { authorizeUrl, pkce } from '../support/browser.ts';
import { type BrowserWorld, startBrowserWorld } from '../support/browser-world.ts';
import { signInHome, typeCredentials } from '../support/page-sign-in.ts';
import { mailedCode } from '../support/smtp-sink.ts';

// A new student on a 360x740 Android phone (Debian's chromium with a phone's user agent, so that
// Akamon knows it is one). Each test is a defect a walk-through found, and each failed before its
// fix: a device code wider than its field, tiny SMS/voice radios, secrets broken inside a group,
// new passwords saved without their account, autocorrect on the reset's Common ID, 18 px high
// lone links, an SMS without its origin-bound code line, and the person's name offered as the
// name of an app password.

let world: BrowserWorld;
let akamon: RunningAkamon;
let browser: ChromiumBrowser;
let rpOrigin: string;
/** The texts the phone gateway was given: the method is offered only with a gateway. */
const texts: Array<{ to: string; channel: string; text: string }> = [];
let gateway: http.Server;

beforeAll(async () => {
  gateway = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      texts.push(JSON.parse(body));
      response.end('{}');
    });
  });
  await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
  const port = (gateway.address() as AddressInfo).port;
  world = await startBrowserWorld({
    env: { AKAMON_PHONE_GATEWAY: 'webhook', AKAMON_PHONE_WEBHOOK_URL: `http://127.0.0.1:${port}/sms`, AKAMON_PHONE_WEBHOOK_SECRET: 'phone-test-gateway-secret-0123456789-abcdefgh' },
  });
  ({ akamon, browser, relyingPartyOrigin: rpOrigin } = world);
}, 120_000);

afterAll(async () => {
  await world?.close();
  await new Promise((resolve) => gateway?.close(resolve));
});

const PHONE = {
  viewport: { width: 360, height: 740 },
  deviceScaleFactor: 3,
  isMobile: true,
  hasTouch: true,
  userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
} as const;

/** The smallest tap target a phone user can hit reliably (WCAG 2.5.5, Apple's 44 pt). */
const TAP = 44;

/** A phone in English, closed after `walk` whatever happens. */
async function onPhone(walk: (page: Page) => Promise<void>): Promise<void> {
  const context = await browser.newContext({ ...PHONE, locale: 'en-US' });
  try {
    await walk(await context.newPage());
  } finally {
    await context.close();
  }
}

/** Signed in at the account home, then at "Add a sign-in method" with `method` chosen and sent; the account's id. */
async function setUpMethod(page: Page, method: 'app' | 'phone'): Promise<string> {
  const account = await akamon.createReadyAccount();
  await signInHome(page, akamon.url, account);
  await page.goto(`${akamon.url}/account/security`);
  await page.getByRole('link', { name: 'Add a sign-in method' }).click();
  await page.locator(`input[name="method"][value="${method}"]`).check();
  await page.getByRole('button', { name: 'Next' }).click();
  await page.waitForLoadState();
  return account.id;
}

/** A system that requires MFA, its sign-in begun by `account` up to the password typed. */
async function signInRequiringMfa(page: Page, account: { commonId: string; password: string }): Promise<void> {
  const client = await akamon.createClient({ name: 'UTokyo VPN', requireMfa: true, redirectUris: [`${rpOrigin}/vpn`] });
  await page.goto(authorizeUrl(akamon.url, { client_id: client.clientId, redirect_uri: client.redirectUri, code_challenge: pkce().challenge, code_challenge_method: 'S256' }));
  await typeCredentials(page, account);
}

/** At the second-factor prompt of such a system, as an account with an authenticator app. */
async function atMfaPrompt(page: Page): Promise<void> {
  const account = await akamon.createReadyAccount();
  const { secret, sealed } = akamon.deps.mfa.pendingTotp();
  expect((await akamon.deps.mfa.confirmTotp(account.id, sealed, await generate({ secret }), 'App')).ok).toBe(true);
  await signInRequiringMfa(page, account);
  await page.locator('input[name="code"]').waitFor();
}

describe('the device-flow code page', () => {
  test('the code typed in is seen whole in its field, first letter included', async () => {
    const client = await akamon.createClient({ name: 'HPC login', redirectUris: [], deviceFlow: true, public: true, firstParty: true });
    const response = await fetch(`${akamon.url}/device/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: client.clientId, scope: 'openid' }),
    });
    const { user_code: userCode } = (await response.json()) as { user_code: string };
    await onPhone(async (page) => {
      await page.goto(`${akamon.url}/device`);
      await page.locator('input[name="user_code"]').fill(userCode);
      // It was 206 px of "BDFG-HJKL" in a 190 px field sized for six digits: the first letter scrolled out of sight.
      const field = await page.evaluate<{ text: number; box: number }>(
        `(() => { const input = document.querySelector('input[name="user_code"]'); return { text: input.scrollWidth, box: input.clientWidth }; })()`,
      );
      expect(field.text).toBeLessThanOrEqual(field.box);
    });
  });
});

describe('setting up a phone (SMS or voice call)', () => {
  test('"SMS" and "Voice call" are whole-row tap targets', async () => {
    await onPhone(async (page) => {
      await setUpMethod(page, 'phone');
      await page.locator('input[name="phone"]').waitFor();
      // They were bare 13 px radios in 19 px high labels, side by side.
      const targets = await page.evaluate<Array<{ value: string; width: number; height: number }>>(
        `[...document.querySelectorAll('input[name="channel"]')].map((input) => { const box = input.labels[0].getBoundingClientRect(); return { value: input.value, width: Math.round(box.width), height: Math.round(box.height) }; })`,
      );
      expect(targets.map((t) => t.value)).toEqual(['sms', 'voice']);
      expect(targets.filter((t) => t.height < TAP || t.width < TAP)).toEqual([]);
    });
  });

  test("the SMS ends with the origin-bound code line the phone's autofill reads; a call reads the code digit by digit", async () => {
    await onPhone(async (page) => {
      const accountId = await setUpMethod(page, 'phone');
      await page.locator('input[name="phone"]').fill('090-3600-0001');
      await page.locator('label[for="channel-sms"]').click();
      await page.getByRole('button', { name: 'Send a code' }).click();
      await page.locator('input[name="code"]').waitFor();
      const sms = texts.at(-1)!;
      const lastLine = sms.text.split('\n').at(-1)!;
      // It was the spaced-out code alone ("1 2 3 4 5 6"): neither iOS nor WebOTP offered it.
      expect(lastLine).toMatch(new RegExp(`^@${new URL(akamon.url).hostname.replaceAll('.', '\\.')} #\\d{6}$`));
      const code = lastLine.split('#')[1];
      expect(sms.text).toContain(code.split('').join(' '));
      // The code in that line is the one the set-up takes.
      await page.locator('input[name="code"]').fill(code);
      await page.getByRole('button', { name: 'Confirm and continue' }).click();
      await page.locator('input[name="code"]').waitFor({ state: 'detached' });
      expect((await akamon.deps.mfa.factors(accountId)).map((factor) => factor.kind)).toEqual(['phone']);
    });
    await onPhone(async (page) => {
      await setUpMethod(page, 'phone');
      await page.locator('input[name="phone"]').fill('090-3600-0002');
      await page.locator('label[for="channel-voice"]').click();
      await page.getByRole('button', { name: 'Send a code' }).click();
      await page.locator('input[name="code"]').waitFor();
      expect(texts.at(-1)).toMatchObject({ channel: 'voice', text: expect.stringMatching(/\d \d \d \d \d \d\.[^@]*$/) });
    });
  });
});

/** The groups of a grouped secret ("ABCD EFGH ...") that the page breaks across two lines. */
function groupsSplitAcrossLines(page: Page, selector: string): Promise<string[]> {
  return page.evaluate<string[]>(`(() => {
    const code = document.querySelector(${JSON.stringify(selector)});
    const text = code.firstChild;
    const split = [];
    for (const group of text.textContent.matchAll(/\\S+/g)) {
      const tops = new Set();
      for (let i = group.index; i < group.index + group[0].length; i += 1) {
        const range = document.createRange();
        range.setStart(text, i);
        range.setEnd(text, i + 1);
        tops.add(Math.round(range.getClientRects()[0].top));
      }
      if (tops.size > 1) split.push(group[0]);
    }
    return split;
  })()`);
}

describe('secrets shown in groups of four', () => {
  // They broke anywhere (word-break: break-all): at 360 px a group was cut in two ("2G" / "3K"),
  // and the person copying it onto another device read groups that do not exist.
  test('the authenticator app key keeps each group on one line', async () => {
    await onPhone(async (page) => {
      await setUpMethod(page, 'app');
      await page.locator('.secret-key code').waitFor();
      expect(await groupsSplitAcrossLines(page, '.secret-key code')).toEqual([]);
    });
  });

  test('a new app password keeps each group on one line', async () => {
    await onPhone(async (page) => {
      await signInHome(page, akamon.url, await akamon.createReadyAccount());
      await page.locator('input[name="name"]').fill('Mail on my laptop');
      await page.getByRole('button', { name: 'Create an app password' }).click();
      await page.locator('.secret-key code').waitFor();
      expect(await groupsSplitAcrossLines(page, '.secret-key code')).toEqual([]);
    });
  });
});

describe('the name of a new app password', () => {
  /** What the browser may fill into the app password's name field. */
  const autocompleteOf = (page: Page) => page.locator('input[name="name"]').getAttribute('autocomplete');

  // Without autocomplete="off" the phone offered the person's own name for "Mail on my laptop".
  test("is not filled with the person's name on the account home", async () => {
    await onPhone(async (page) => {
      await signInHome(page, akamon.url, await akamon.createReadyAccount());
      expect(await autocompleteOf(page)).toBe('off');
    });
  });

  test("is not filled with the person's name at the first set-up's app password step", async () => {
    await onPhone(async (page) => {
      await signInRequiringMfa(page, await akamon.createReadyAccount());
      await page.locator('input[name="method"][value="app"]').check();
      await page.getByRole('button', { name: 'Next' }).click();
      const secret = (await page.locator('.secret-key code').textContent())!.replace(/\s/g, '');
      await page.locator('input[name="code"]').fill(await generate({ secret }));
      await page.getByRole('button', { name: 'Confirm and continue' }).click();
      const email = `app-password-${Date.now()}@example.com`;
      await page.locator('input[name="email"]').fill(email);
      await page.getByRole('button', { name: 'Send a code to this address' }).click();
      await page.locator('input[name="code"]').fill(mailedCode(akamon.mails, email));
      await page.getByRole('button', { name: 'Confirm and continue' }).click();
      await page.locator('input[name="name"]').waitFor();
      expect(await autocompleteOf(page)).toBe('off');
    });
  });
});

/** How a new-password form is reached, signed in as (or resetting) the account it returns. */
const NEW_PASSWORD_FORMS: Array<[string, (page: Page) => Promise<string>]> = [
  [
    'the password change of the first sign-in',
    async (page) => {
      const account = await akamon.createAccount();
      await page.goto(`${akamon.url}/account`);
      await typeCredentials(page, account);
      await page.locator('input[name="current"]').waitFor();
      return account.commonId;
    },
  ],
  [
    'Security info',
    async (page) => {
      const account = await akamon.createReadyAccount();
      await signInHome(page, akamon.url, account);
      await page.goto(`${akamon.url}/account/security`);
      return account.commonId;
    },
  ],
  [
    'a forgotten password reset',
    async (page) => {
      const account = await akamon.createReadyAccount();
      const email = `reset-${account.commonId}@example.com`;
      await akamon.deps.accounts.setRecoveryEmail(account.id, email);
      await page.goto(`${akamon.url}/recover`);
      await page.locator('input[name="identifier"]').fill(account.commonId);
      await page.locator('form[data-captcha] button[type=submit]:enabled').waitFor({ timeout: 30_000 });
      await page.locator('form[data-captcha] button[type=submit]').click();
      await page.locator('input[name="code"]').fill(mailedCode(akamon.mails, email));
      await page.locator('main form button[type=submit]').click();
      await page.locator('input[name="new"]').waitFor();
      return account.commonId;
    },
  ],
];

describe('a password manager saving a new password', () => {
  // The forms held the new password and no username, so the password was saved without the Common
  // ID it belongs to; chromium says so itself, as the sign-in's password page (which has one) never does.
  test.each(NEW_PASSWORD_FORMS)('%s names the account the password is for', async (_name, reach) => {
    await onPhone(async (page) => {
      const warnings: string[] = [];
      page.on('console', (message) => {
        if (message.text().includes('Password forms should have (optionally hidden) username fields')) warnings.push(message.text());
      });
      const commonId = await reach(page);
      const usernames = await page.evaluate<string[]>(
        `[...document.querySelectorAll('form')].filter((form) => form.querySelector('input[autocomplete="new-password"]')).flatMap((form) => [...form.querySelectorAll('input[autocomplete="username"]')].map((input) => input.value))`,
      );
      expect({ usernames, warnings }).toEqual({ usernames: [commonId], warnings: [] });
    });
  });
});

describe('the Common ID field of the password reset', () => {
  test('is typed like the sign-in one: no autocorrect', async () => {
    await onPhone(async (page) => {
      const read = `(() => { const input = document.querySelector('input[name="identifier"]'); return Object.fromEntries(['autocomplete', 'autocapitalize', 'autocorrect', 'spellcheck'].map((name) => [name, input.getAttribute(name)])); })()`;
      await page.goto(`${akamon.url}/account`);
      const signIn = await page.evaluate<Record<string, string | null>>(read);
      expect(signIn.autocorrect).toBe('off');
      await page.goto(`${akamon.url}/recover`);
      // Autocorrect was on: iOS "corrected" the Common ID as it was typed.
      expect(await page.evaluate<Record<string, string | null>>(read)).toEqual(signIn);
    });
  });
});

/** The password page of the sign-in, for a ready account. */
async function atPasswordPage(page: Page): Promise<void> {
  await page.goto(`${akamon.url}/account`);
  await page.locator('input[name="identifier"]').fill((await akamon.createReadyAccount()).commonId);
  await page.locator('input[name="identifier"]').press('Enter');
  await page.locator('input[name="password"]').waitFor();
}

/** A page whose way on is a text link alone in its paragraph, and that link. */
const LONE_LINKS: Array<[string, string, (page: Page) => Promise<void>]> = [
  ['"Forgot your password?" on the password page', 'a[href="/recover"]', atPasswordPage],
  ['"Not you? Use another account" on the password page', '.switch-account a', atPasswordPage],
  ['"I can\'t use any of these methods" when the second factor is asked', 'main .next-step a', atMfaPrompt],
  [
    '"Back to the verification" on "Can\'t use your sign-in methods?"',
    'main .next-step a',
    async (page) => {
      await atMfaPrompt(page);
      await page.locator('main .next-step a').click();
      await page.getByRole('heading', { level: 1, name: "Can't use your sign-in methods?" }).waitFor();
    },
  ],
  ['"Go to the Akamon home page" on an error page', 'main a[href="/"]', (page) => page.goto(`${akamon.url}/no-such-page`).then(() => undefined)],
];

describe('links a phone user must tap', () => {
  // They were 18 to 19 px high (the line of text), most of them the one way out of a dead end
  // (a lost phone, a wrong account, an error); buttons are 48 px.
  test.each(LONE_LINKS)('%s is at least 44 px high', async (_name, selector, reach) => {
    await onPhone(async (page) => {
      await reach(page);
      const box = await page.locator(selector).first().boundingBox();
      expect(Math.round(box?.height ?? 0)).toBeGreaterThanOrEqual(TAP);
    });
  });
});
