import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import axe from 'axe-core';
import { generate } from 'otplib';
import type { BrowserContext, Browser as ChromiumBrowser, Page } from 'playwright-core';
import type { RunningAkamon } from '../support/akamon.ts';
import { type BrowserWorld, startBrowserWorld } from '../support/browser-world.ts';
import { authorizeUrl, pkce } from '../support/browser.ts';
import { mailedCode } from '../support/smtp-sink.ts';

/*
 * Issue 14 point 8: every person-facing flow walked in a real browser (Debian's chromium) on a
 * laptop (1280x800) and a phone (390x844), in English and in Japanese, with axe-core run on every
 * page reached: no violation of impact serious or critical, the page in the expected language, no
 * sideways scrolling. Keyboard-only flows use Tab, Enter and Space alone, check where the focus
 * lands, and that every element reachable by Tab shows a focus ring.
 *
 * How to add a flow: append a `Flow` to FLOWS (or to KEYBOARD_FLOWS for a keyboard-only walk). It
 * is a name, a `prepare` that makes what the flow needs (accounts, clients) through the test app,
 * and a list of steps, one function per page: a step acts on the page the previous one reached
 * (fills, clicks, or only keys) and waits, with `next`, until the browser shows the next page.
 * After every step the runner checks that page, unless the step says `offsite` (a relying
 * party's page). Steps find fields and buttons by name and form action, never by their text, so
 * one flow serves both languages. A new MFA method's set-up: a flow like the authenticator app's
 * at the end of FLOWS, and its keyboard-only twin at the end of KEYBOARD_FLOWS.
 */

const VIEWPORTS = {
  laptop: { viewport: { width: 1280, height: 800 } },
  phone: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
} as const;
const LANGUAGES = { en: 'en-US', ja: 'ja-JP' } as const;
type Lang = keyof typeof LANGUAGES;

/** One walk through one flow in one browser context: the page, the language, and what `prepare` made. */
interface Walk {
  page: Page;
  lang: Lang;
  /** The language the current page must be in (the language switch changes it for a page). */
  pageLang: Lang;
  made: Record<string, any>;
}

interface Step {
  /** The page the step leads to, as named in failure messages. */
  page: string;
  run: (w: Walk) => Promise<void>;
  /** The step ends outside Akamon (at the relying party): nothing of ours to check. */
  offsite?: boolean;
  /** Also check that every element reachable by Tab shows a focus ring (keyboard flows). */
  focusRings?: boolean;
}
interface Flow {
  name: string;
  prepare?: (akamon: RunningAkamon, w: Walk) => Promise<void>;
  steps: Step[];
}

const step = (page: string, run: Step['run'], options: Omit<Step, 'page' | 'run'> = {}): Step => ({ page, run, ...options });

let world: BrowserWorld;
let akamon: RunningAkamon;
let browser: ChromiumBrowser;
let rpOrigin: string;

beforeAll(async () => {
  world = await startBrowserWorld();
  ({ akamon, browser, relyingPartyOrigin: rpOrigin } = world);
}, 120_000);

afterAll(() => world?.close());

// ---- Moving between pages -------------------------------------------------------------------------

/**
 * Runs `action` (a click, a key, a goto) and waits for the load event of the document it leads
 * to: a form posted back to the same URL (303 to it) is a new page too. (A predicate polled in
 * the page would need eval, which the pages' Content-Security-Policy refuses.)
 */
async function next(page: Page, action: () => Promise<unknown>): Promise<void> {
  const loaded = page.waitForEvent('load');
  await action();
  await loaded;
}

const click = (w: Walk, selector: string) => next(w.page, () => w.page.locator(selector).first().click());
const goto = (w: Walk, path: string) => next(w.page, () => w.page.goto(new URL(path, akamon.url).href));

async function fillAndSubmit(w: Walk, fields: Record<string, string>, submit = 'button[type=submit]') {
  const form = w.page.locator('form', { has: w.page.locator(`[name="${Object.keys(fields)[0]}"]`) }).first();
  for (const [name, value] of Object.entries(fields)) await form.locator(`[name="${name}"]`).fill(value);
  await next(w.page, () => form.locator(submit).first().click());
}

/** An authorization request of `client`, as its relying party would send the browser. */
function authorize(w: Walk, client: { clientId: string; redirectUri: string }) {
  const { challenge } = pkce();
  return next(w.page, () => w.page.goto(authorizeUrl(akamon.url, { client_id: client.clientId, redirect_uri: client.redirectUri, code_challenge: challenge, code_challenge_method: 'S256' })));
}

async function atRelyingParty(w: Walk, client: { redirectUri: string }) {
  await w.page.waitForURL((url) => url.href.startsWith(client.redirectUri));
}

// ---- Keyboard -------------------------------------------------------------------------------------

/** What has the focus: its id, else tag and name, else its text. */
const focused = (page: Page) =>
  page.evaluate<string>(`(() => { const e = document.activeElement; if (!e || e === document.body) return 'body';
    return e.id ? '#' + e.id : e.tagName.toLowerCase() + (e.getAttribute('name') ? '[name=' + e.getAttribute('name') + ']' : '') + ':' + (e.textContent || '').trim().slice(0, 40); })()`);

/** The focused element shows a ring: an outline, or one drawn with box-shadow. */
const RING_SHOWN = `(() => { const e = document.activeElement; if (!e || e === document.body) return null;
  const s = getComputedStyle(e); return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || (s.boxShadow !== '' && s.boxShadow !== 'none'); })()`;

/** `selector` has the focus, and shows it. */
async function expectFocus(w: Walk, selector: string) {
  const matches = await w.page.evaluate<boolean>(`document.activeElement?.matches(${JSON.stringify(selector)}) ?? false`);
  if (!matches) throw new Error(`focus expected on ${selector}, found on ${await focused(w.page)} (${w.page.url()})`);
  if (!(await w.page.evaluate<boolean | null>(RING_SHOWN))) throw new Error(`${selector} has the focus but shows no focus ring (${w.page.url()})`);
}

/** Presses Tab until `selector` has the focus, as a keyboard user would; fails if it never does. */
async function tabTo(w: Walk, selector: string) {
  for (let presses = 0; presses < 40; presses += 1) {
    if (await w.page.evaluate<boolean>(`document.activeElement?.matches(${JSON.stringify(selector)}) ?? false`)) return;
    await w.page.keyboard.press('Tab');
  }
  throw new Error(`Tab never reached ${selector} on ${w.page.url()}`);
}

/** The elements a Tab can reach, in document order (radio groups aside: Tab stops at one of each). */
const TABBABLE = `[...document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')].filter((e) => !e.disabled && e.tabIndex >= 0 && e.getClientRects().length > 0)`;

/**
 * Tabs through the whole page (Tab wraps around, past the browser's own controls) and returns the
 * elements whose focus cannot be seen. Leaves the focus where it was.
 */
async function focusWithoutRing(page: Page): Promise<string[]> {
  const before = await focused(page);
  const count = await page.evaluate<number>(`${TABBABLE}.length`);
  const seen = new Set<number>();
  const unseen: string[] = [];
  for (let presses = 0; presses < count * 2 + 2 && seen.size < count; presses += 1) {
    await page.keyboard.press('Tab');
    const at = await page.evaluate<{ index: number; ring: boolean | null }>(`({ index: ${TABBABLE}.indexOf(document.activeElement), ring: ${RING_SHOWN} })`);
    if (at.index < 0 || seen.has(at.index)) continue;
    seen.add(at.index);
    if (!at.ring) unseen.push(await focused(page));
  }
  if (before !== 'body') await page.focus(before.startsWith('#') ? before : 'body');
  return unseen;
}

// ---- The check of every page ----------------------------------------------------------------------

interface Problem {
  page: string;
  url: string;
  lines: string[];
}

async function checkPage(w: Walk, s: Step): Promise<Problem | undefined> {
  const lines: string[] = [];
  const url = w.page.url();
  if (!(await w.page.evaluate<boolean>(`typeof window.axe === 'object'`))) await w.page.evaluate(axe.source);
  const violations = await w.page.evaluate<{ id: string; impact: string; help: string; targets: string[] }[]>(`(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.join(' ') + (n.failureSummary ? ' -- ' + n.failureSummary.replace(/\\s+/g, ' ').slice(0, 200) : '')) }));
  })()`);
  for (const v of violations) lines.push(`axe ${v.id} (${v.impact}): ${v.help}\n      ${v.targets.join('\n      ')}`);
  // axe leaves an id shared by a label's target and another element "to review": a label then names the wrong one.
  const duplicates = await w.page.evaluate<string[]>(
    `(() => { const seen = new Set(), twice = new Set(); for (const e of document.querySelectorAll('[id]')) { if (seen.has(e.id)) twice.add(e.id); seen.add(e.id); } return [...twice]; })()`,
  );
  if (duplicates.length > 0) lines.push(`ids used twice: ${duplicates.join(', ')}`);
  const lang = await w.page.evaluate<string>('document.documentElement.lang');
  if (lang !== w.pageLang) lines.push(`<html lang="${lang}">, expected ${w.pageLang}`);
  const sideways = await w.page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
  if (sideways > 0) lines.push(`the page scrolls sideways by ${sideways}px`);
  if (s.focusRings) for (const element of await focusWithoutRing(w.page)) lines.push(`no visible focus on ${element}`);
  return lines.length > 0 ? { page: s.page, url, lines } : undefined;
}

// ---- Flows ----------------------------------------------------------------------------------------

const NEW_PASSWORD = 'Akamon-Gate-2026x';

async function totpAccount(a: RunningAkamon) {
  const account = await a.createReadyAccount({ name: 'Jiro Tanaka' });
  const { secret, sealed } = a.deps.mfa.pendingTotp();
  expect(await a.deps.mfa.confirmTotp(account.id, sealed, await generate({ secret }), 'Authenticator app')).toMatchObject({ ok: true });
  return { ...account, secret };
}

/** A code of the next 30-second step: the current one was consumed by the enrolment. */
const nextCode = (secret: string) => generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 });

/** Common ID, then password, of `w.made.account`; `then` names the page the sign-in leads to. */
const signInSteps = (then: string): Step[] => [
  step('password', (w) => fillAndSubmit(w, { identifier: w.made.account.commonId })),
  step(then, (w) => fillAndSubmit(w, { password: w.made.account.password })),
];

/** Submits the form that holds `selector` (a button of its own, or the form's first submit button). */
const submitFormOf = (w: Walk, selector: string) =>
  next(w.page, () =>
    w.page
      .locator('form', { has: w.page.locator(selector) })
      .first()
      .locator('button[type=submit]')
      .first()
      .click(),
  );

/** The authenticator app's secret, as the set-up page shows it under the QR code. */
const secretOnPage = async (w: Walk) => ((await w.page.locator('.secret-key code').first().textContent()) ?? '').replace(/\s/g, '');

const FLOWS: Flow[] = [
  {
    name: "a newcomer's first sign-in, the account home, security info, the directory and sign-out",
    prepare: async (a, w) => {
      w.made.account = await a.createAccount({ name: 'Hanako Todai' });
    },
    steps: [
      step('home', (w) => goto(w, '/')),
      step('identifier', (w) => click(w, 'main a[href="/account"]')),
      step('identifier with an error', (w) => fillAndSubmit(w, { identifier: 'not-an-id' })),
      step('password', (w) => fillAndSubmit(w, { identifier: w.made.account.commonId })),
      step('password with an error', (w) => fillAndSubmit(w, { password: 'wrong-password' })),
      step('password change (initial password)', (w) => fillAndSubmit(w, { password: w.made.account.password })),
      step('password change with errors', (w) => fillAndSubmit(w, { current: w.made.account.password, new: NEW_PASSWORD, confirm: `${NEW_PASSWORD}-typo` })),
      step('account home', (w) => fillAndSubmit(w, { current: w.made.account.password, new: NEW_PASSWORD, confirm: NEW_PASSWORD })),
      step('account home, other language', async (w) => {
        await click(w, '.lang-switch');
        w.pageLang = w.lang === 'ja' ? 'en' : 'ja';
      }),
      step('account home, back in its language', async (w) => {
        await click(w, '.lang-switch');
        w.pageLang = w.lang;
      }),
      step('security info', (w) => click(w, 'main a[href="/account/security"]')),
      step('security info after a password change', (w) => fillAndSubmit(w, { current: NEW_PASSWORD, new: `${NEW_PASSWORD}2`, confirm: `${NEW_PASSWORD}2` })),
      step('service directory', (w) => goto(w, '/services')),
      step('account home', (w) => goto(w, '/account')),
      step('sign-out confirmation', (w) => click(w, 'main form[action="/account/logout"] button')),
      step('after sign-out', (w) => click(w, 'button[name=logout][value=yes]')),
      step('account picker', (w) => goto(w, '/account')),
      step('identifier (another account)', (w) => click(w, 'button[name=account][value=other]')),
    ],
  },
  {
    // Without a relying party to go back to, the provider's own "you have signed out" page.
    name: 'sign-out at the provider without a relying party',
    prepare: async (a, w) => {
      w.made.account = await a.createReadyAccount();
    },
    steps: [
      step('identifier', (w) => goto(w, '/account')),
      ...signInSteps('account home'),
      step('sign-out confirmation', (w) => goto(w, '/session/end')),
      step('signed out', (w) => click(w, 'button[name=logout][value=yes]')),
    ],
  },
  {
    name: 'a system that requires MFA: the second factor',
    prepare: async (a, w) => {
      w.made.client = await a.createClient({ name: 'UTokyo VPN', requireMfa: true, redirectUris: [`${rpOrigin}/vpn`] });
      w.made.account = await totpAccount(a);
    },
    steps: [
      step('identifier', (w) => authorize(w, w.made.client)),
      ...signInSteps('MFA verify'),
      step('MFA verify with an error', (w) => fillAndSubmit(w, { code: '000000' })),
      step("I can't use this method", (w) => click(w, 'main .next-step a')),
      step('MFA verify, again', (w) => click(w, 'main .next-step a')),
      step(
        'relying party',
        async (w) => {
          const form = w.page.locator('form', { has: w.page.locator('[name=code]') }).first();
          await form.locator('[name=code]').fill(await nextCode(w.made.account.secret));
          await form.locator('button[type=submit]').first().click();
          await atRelyingParty(w, w.made.client);
        },
        { offsite: true },
      ),
    ],
  },
  {
    name: 'consent at a system of another organisation',
    prepare: async (a, w) => {
      w.made.client = await a.createClient({ name: 'Partner Library', firstParty: false, redirectUris: [`${rpOrigin}/library`] });
      w.made.account = await a.createReadyAccount();
    },
    steps: [
      step('identifier', (w) => authorize(w, w.made.client)),
      ...signInSteps('consent'),
      step(
        'relying party',
        async (w) => {
          await w.page.locator('button[name=decision][value=approve]').click();
          await atRelyingParty(w, w.made.client);
        },
        { offsite: true },
      ),
      // The system allowed just now, on the account home's list, and taken off it.
      step('connected systems', (w) => goto(w, '/account/apps')),
      step('connected systems after removing access', (w) => click(w, 'main .connected-apps button')),
    ],
  },
  {
    name: 'access denied (53003)',
    prepare: async (a, w) => {
      w.made.client = await a.createClient({ name: 'Payroll', allowedAffiliations: ['staff'], redirectUris: [`${rpOrigin}/payroll`] });
      w.made.account = await a.createReadyAccount({ affiliation: 'student' });
    },
    steps: [
      step('identifier', (w) => authorize(w, w.made.client)),
      step('password', (w) => fillAndSubmit(w, { identifier: w.made.account.commonId })),
      step('53003 access denied', (w) => fillAndSubmit(w, { password: w.made.account.password })),
    ],
  },
  {
    name: 'error pages',
    steps: [
      step('not found', (w) => goto(w, '/no-such-page')),
      step('unknown client', (w) => goto(w, '/auth?client_id=no-such-client&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fexample.org%2F')),
    ],
  },
  {
    name: 'a forgotten password: captcha, mailed code, second factor, new password',
    prepare: async (a, w) => {
      w.made.account = await totpAccount(a);
      w.made.email = `a11y-${w.made.account.commonId}@example.com`;
      await a.deps.accounts.setRecoveryEmail(w.made.account.id, w.made.email);
      w.made.noEmail = await a.createReadyAccount({ email: null });
      // Each run is another person: the walk's four runs from one loopback address would otherwise
      // meet the per-address limit on starting resets, earlier the faster the machine.
      await a.deps.database.db.deleteFrom('throttle').where('key', 'like', 'recover:address:%').execute();
    },
    steps: [
      step('reset start', (w) => goto(w, '/recover')),
      step('code', async (w) => {
        await w.page.locator('[name=identifier]').fill(w.made.account.commonId);
        // The page's own script solves the proof-of-work, then enables the button.
        await w.page.locator('form[data-captcha] button[type=submit]:enabled').waitFor({ timeout: 30_000 });
        await next(w.page, () => w.page.locator('form[data-captcha] button[type=submit]').click());
      }),
      step('code with an error', (w) => fillAndSubmit(w, { code: '000000' })),
      step('second factor', (w) => fillAndSubmit(w, { code: mailedCode(akamon.mails, w.made.email) })),
      step("I can't use this method", (w) => click(w, 'main .next-step a')),
      step('second factor, again', (w) => click(w, 'main .next-step a')),
      step('new password', async (w) => fillAndSubmit(w, { code: await nextCode(w.made.account.secret) })),
      step('new password with errors', (w) => fillAndSubmit(w, { new: NEW_PASSWORD, confirm: `${NEW_PASSWORD}-typo` })),
      step('done', (w) => fillAndSubmit(w, { new: NEW_PASSWORD, confirm: NEW_PASSWORD })),
      step('reset start', (w) => goto(w, '/recover')),
      step('no recovery email', async (w) => {
        await w.page.locator('[name=identifier]').fill(w.made.noEmail.commonId);
        await w.page.locator('form[data-captcha] button[type=submit]:enabled').waitFor({ timeout: 30_000 });
        await next(w.page, () => w.page.locator('form[data-captcha] button[type=submit]').click());
      }),
    ],
  },
  {
    name: 'the device flow: code, confirmation, sign-in, done',
    prepare: async (a, w) => {
      const client = await a.createClient({ name: 'HPC login', redirectUris: [], deviceFlow: true, public: true, firstParty: true });
      const response = await fetch(`${a.url}/device/auth`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ client_id: client.clientId, scope: 'openid' }),
      });
      expect(response.status).toBe(200);
      w.made.userCode = ((await response.json()) as { user_code: string }).user_code;
      w.made.account = await a.createReadyAccount();
    },
    steps: [
      step('device code', (w) => goto(w, '/device')),
      step('device code with an error', (w) => fillAndSubmit(w, { user_code: 'BCDF-GHJK' })),
      step('device confirmation', (w) => fillAndSubmit(w, { user_code: w.made.userCode })),
      step('identifier', (w) => click(w, 'button[name=confirm][value=yes]')),
      ...signInSteps('device done'),
    ],
  },
  {
    name: 'security info with an authenticator app: removing it asks first',
    prepare: async (a, w) => {
      w.made.account = await totpAccount(a);
    },
    steps: [
      step('identifier', (w) => goto(w, '/account')),
      ...signInSteps('account home'),
      step('security info', (w) => click(w, 'main a[href="/account/security"]')),
      step('remove confirmation', (w) => click(w, 'form[action$="/remove"] button[type=submit]')),
    ],
  },
  {
    name: 'MFA set-up at a system that requires it: the authenticator app, recovery email, app password, finish',
    prepare: async (a, w) => {
      w.made.client = await a.createClient({ name: 'UTokyo VPN', requireMfa: true, redirectUris: [`${rpOrigin}/vpn-setup`] });
      w.made.account = await a.createReadyAccount({ name: 'Saburo Setup' });
      w.made.email = `setup-${w.made.account.commonId}@example.com`;
    },
    steps: [
      step('identifier', (w) => authorize(w, w.made.client)),
      ...signInSteps('which method'),
      step('authenticator app set-up', async (w) => {
        await w.page.locator('input[name=method][value=app]').check();
        await submitFormOf(w, 'input[name=method]');
      }),
      step('authenticator app set-up with an error', (w) => fillAndSubmit(w, { code: '000000' })),
      step('recovery email', async (w) => fillAndSubmit(w, { code: await generate({ secret: await secretOnPage(w) }) })),
      step('recovery email code', (w) => fillAndSubmit(w, { email: w.made.email })),
      step('app password', (w) => fillAndSubmit(w, { code: mailedCode(akamon.mails, w.made.email) })),
      step('finish', (w) => click(w, 'form[action$="/app_password_skip"] button[type=submit]')),
      step(
        'relying party',
        async (w) => {
          await w.page.locator('form[action$="/finish"] button[type=submit]').first().click();
          await atRelyingParty(w, w.made.client);
        },
        { offsite: true },
      ),
    ],
  },
];

// ---- Keyboard-only flows --------------------------------------------------------------------------

/** Types into the focused element, then presses `key` there (Enter submits, Space presses a button). */
async function typeThen(w: Walk, text: string, key?: 'Enter' | 'Space') {
  await w.page.keyboard.type(text);
  if (key) await next(w.page, () => w.page.keyboard.press(key));
}

const KEYBOARD_FLOWS: Flow[] = [
  {
    name: 'keyboard only: sign-in with a wrong password, then the forced password change',
    prepare: async (a, w) => {
      w.made.account = await a.createAccount({ name: 'Keiko Kibodo' });
    },
    steps: [
      step('identifier', (w) => goto(w, '/account'), { focusRings: true }),
      step(
        'password',
        async (w) => {
          await expectFocus(w, '#identifier');
          await typeThen(w, w.made.account.commonId, 'Enter');
        },
        { focusRings: true },
      ),
      step(
        'password with an error',
        async (w) => {
          await expectFocus(w, '#password');
          await typeThen(w, 'not-my-password', 'Enter');
        },
        { focusRings: true },
      ),
      step(
        'password change',
        async (w) => {
          // The error message has the focus (read out first); the next Tab is the password field.
          await expectFocus(w, '#password-error');
          await w.page.keyboard.press('Tab');
          await expectFocus(w, '#password');
          await typeThen(w, w.made.account.password, 'Enter');
        },
        { focusRings: true },
      ),
      step(
        'account home',
        async (w) => {
          await expectFocus(w, '[name=current]');
          await w.page.keyboard.type(w.made.account.password);
          await w.page.keyboard.press('Tab');
          await expectFocus(w, '[name=new]');
          await w.page.keyboard.type(NEW_PASSWORD);
          await w.page.keyboard.press('Tab');
          await expectFocus(w, '[name=confirm]');
          await w.page.keyboard.type(NEW_PASSWORD);
          await tabTo(w, 'form button[type=submit]');
          await next(w.page, () => w.page.keyboard.press('Space'));
          expect(new URL(w.page.url()).pathname).toBe('/account');
        },
        { focusRings: true },
      ),
    ],
  },
  {
    name: 'keyboard only: MFA set-up with an authenticator app, a personal recovery email, no app password',
    prepare: async (a, w) => {
      w.made.client = await a.createClient({ name: 'UTokyo VPN', requireMfa: true, redirectUris: [`${rpOrigin}/vpn-keys`] });
      w.made.account = await a.createReadyAccount({ name: 'Shiro Setup' });
    },
    steps: [
      step('identifier', (w) => authorize(w, w.made.client)),
      step('password', async (w) => {
        await expectFocus(w, '#identifier');
        await typeThen(w, w.made.account.commonId, 'Enter');
      }),
      step(
        'which method',
        async (w) => {
          await expectFocus(w, '#password');
          await typeThen(w, w.made.account.password, 'Enter');
        },
        { focusRings: true },
      ),
      step(
        'authenticator app set-up',
        async (w) => {
          // Tab stops at the chosen method (the recommended app), then reaches the button.
          await tabTo(w, 'input[name=method]:checked');
          await tabTo(w, 'form:has(input[name=method]) button[type=submit]');
          await next(w.page, () => w.page.keyboard.press('Space'));
        },
        { focusRings: true },
      ),
      step(
        'recovery email',
        async (w) => {
          await tabTo(w, 'input[name=code]');
          await typeThen(w, await generate({ secret: await secretOnPage(w) }), 'Enter');
        },
        { focusRings: true },
      ),
      step(
        'recovery email code',
        async (w) => {
          // The field is empty (never the university's own address, which a locked-out person cannot read): typed, then Enter.
          expect(await w.page.locator('input[name=email]').inputValue()).toBe('');
          w.made.email = `home-${w.made.account.commonId}@example.com`;
          await tabTo(w, 'input[name=email]');
          await typeThen(w, w.made.email, 'Enter');
        },
        { focusRings: true },
      ),
      step(
        'app password',
        async (w) => {
          await tabTo(w, 'input[name=code]');
          await typeThen(w, mailedCode(akamon.mails, w.made.email), 'Enter');
        },
        { focusRings: true },
      ),
      step(
        'finish',
        async (w) => {
          await tabTo(w, 'form[action$="/app_password_skip"] button[type=submit]');
          await next(w.page, () => w.page.keyboard.press('Space'));
        },
        { focusRings: true },
      ),
      step(
        'relying party',
        async (w) => {
          await tabTo(w, 'form[action$="/finish"] button[type=submit]');
          await w.page.keyboard.press('Enter');
          await atRelyingParty(w, w.made.client);
          expect(await akamon.deps.mfa.factors(w.made.account.id)).toEqual([expect.objectContaining({ kind: 'totp' })]);
        },
        { offsite: true },
      ),
    ],
  },
];

// ---- The runner -----------------------------------------------------------------------------------

async function walk(context: BrowserContext, lang: Lang, flow: Flow) {
  await context.clearCookies();
  const page = await context.newPage();
  const w: Walk = { page, lang, pageLang: lang, made: {} };
  const problems: Problem[] = [];
  try {
    await flow.prepare?.(akamon, w);
    for (const s of flow.steps) {
      try {
        await s.run(w);
      } catch (error) {
        throw new Error(`step "${s.page}" failed at ${page.url()}: ${(error as Error).message}`, { cause: error });
      }
      if (!s.offsite) {
        const problem = await checkPage(w, s);
        if (problem) problems.push(problem);
      }
    }
  } catch (error) {
    process.stderr.write(`Akamon log (last 20 lines):\n${akamon.logs.slice(-20).join('')}`);
    throw error;
  } finally {
    await page.close();
  }
  if (problems.length > 0) {
    throw new Error(`${problems.length} page(s) with problems:\n${problems.map((p) => `- ${p.page} (${p.url}):\n    ${p.lines.join('\n    ')}`).join('\n')}`);
  }
}

describe.each(Object.keys(VIEWPORTS) as (keyof typeof VIEWPORTS)[])('on a %s', (device) => {
  describe.each(Object.keys(LANGUAGES) as Lang[])('in %s', (lang) => {
    let context: BrowserContext;
    beforeAll(async () => {
      context = await browser.newContext({ ...VIEWPORTS[device], locale: LANGUAGES[lang] });
    });
    afterAll(() => context?.close());

    test.each([...FLOWS, ...KEYBOARD_FLOWS].map((flow) => [flow.name, flow] as const))('%s', (_name, flow) => walk(context, lang, flow), 120_000);
  });
});
