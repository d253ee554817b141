import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser, decode, pressSignOut, type Page } from '../support/browser.ts';
import { codeFrom, enterCredentials, freshTotpStep, signIn, startAuthorization } from '../support/flows.ts';
import { freePort, processDatabase, spawnServer } from '../support/processes.ts';
import { consoleOperator } from '../support/console-operator.ts';
import { translator } from '../../src/i18n/i18n.ts';

// Issue 14 points 3 to 6: every page a person can end on says what to do next and links to it;
// every change is confirmed; the service directory is on the way; the documented sign-in name
// (0123456789@utac.u-tokyo.ac.jp) works with the shipped configuration.

let akamon: RunningAkamon;
beforeAll(async () => {
  akamon = await startAkamon();
});
afterAll(() => akamon.close());

type Account = Awaited<ReturnType<RunningAkamon['createReadyAccount']>>;

/** The account home at `path`, signed in with the password in a new browser. */
async function homeAt(node: RunningAkamon, account: Account, path: string): Promise<{ browser: Browser; page: Page }> {
  const browser = new Browser(node.url);
  const page = await enterCredentials(browser, await browser.visit(`${node.url}${path}`), account.commonId, account.password);
  expect(new URL(page.url).pathname).toBe(path);
  return { browser, page };
}

/**
 * Gives the account an authenticator app, enrolled with the code of the time step `step` steps from
 * now (an account's codes are single-use across its apps); returns a code maker for the app.
 */
async function withApp(node: RunningAkamon, account: Account, label = 'Phone app', step = 0) {
  const { generate } = await import('otplib');
  const pending = node.deps.mfa.pendingTotp();
  const enrolled = await node.deps.mfa.confirmTotp(account.id, pending.sealed, await generate({ secret: pending.secret, epoch: Math.floor(Date.now() / 1000) + step * 30 }), label);
  expect(enrolled.ok).toBe(true);
  return (offset: number) => generate({ secret: pending.secret, epoch: Math.floor(Date.now() / 1000) + offset * 30 });
}

const hrefs = (page: Page) => [...page.html.matchAll(/<a [^>]*href="([^"]+)"/g)].map((m) => decode(m[1]));

describe('the service directory is on the way', () => {
  test('the home page, the account home and the 53003 page link to /services', async () => {
    const start = await new Browser(akamon.url).visit(`${akamon.url}/`);
    expect(start.status).toBe(200);
    expect(hrefs(start)).toContain('/services');
    const { page } = await homeAt(akamon, await akamon.createReadyAccount(), '/account');
    expect(page.status).toBe(200);
    expect(hrefs(page)).toContain('/services');
    expect((await fetch(`${akamon.url}/services`)).status).toBe(200);
  });

  test('a system whose MFA requirement is scheduled shows the day, in each language', async () => {
    await akamon.createClient({ name: 'Scheduled LMS', listed: true, mfaRequiredFrom: '2099-04-01', redirectUris: ['http://127.0.0.1:9/lms'] });
    await akamon.createClient({ name: 'Plain Wiki', listed: true, redirectUris: ['http://127.0.0.1:9/wiki'] });
    const en = await (await fetch(`${akamon.url}/services`, { headers: { 'accept-language': 'en' } })).text();
    expect(en).toMatch(/Scheduled LMS[\s\S]*?MFA required from 1 Apr 2099/);
    expect(en).toMatch(/Plain Wiki[\s\S]*?MFA: ×/);
    const ja = await (await fetch(`${akamon.url}/services`, { headers: { 'accept-language': 'ja' } })).text();
    expect(ja.replaceAll('<wbr>', '')).toContain('2099年4月1日から多要素認証が必要');
  });
});

describe('no dead ends', () => {
  test('the 53003 page offers another account (the account picker) and the directory; the other account gets through', async () => {
    const payroll = await akamon.createClient({ name: 'Payroll', allowedAffiliations: ['staff'], redirectUris: ['http://127.0.0.1:9/payroll'] });
    const student = await akamon.createReadyAccount({ affiliation: 'student' });
    const staff = await akamon.createReadyAccount({ affiliation: 'staff' });
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, payroll, { login_hint: student.commonId });
    const denied = await enterCredentials(browser, started.page, student.commonId, student.password);
    expect(denied.status).toBe(403);
    expect(hrefs(denied)).toContain('/services');
    const another = hrefs(denied).find((h) => h.startsWith('/auth?'))!;
    expect(denied.html).toContain('Sign in with another account</a>');
    const params = new URL(another, akamon.url).searchParams;
    expect(params.get('prompt')).toBe('select_account');
    expect(params.get('client_id')).toBe(payroll.clientId);
    expect(params.get('state')).toBe(started.state);
    expect(params.has('login_hint')).toBe(false);

    const picker = await browser.visit(`${akamon.url}${another}`);
    expect(picker.status).toBe(200);
    expect(picker.html).toContain(student.commonId);
    const identifier = await browser.submit(picker, /\/select$/, { account: 'other' });
    const back = await enterCredentials(browser, identifier, staff.commonId, staff.password);
    expect(codeFrom(back)).toBeTruthy();
    expect(new URL(back.url).searchParams.get('state')).toBe(started.state);
    const [event] = await akamon.deps.signinLog.list({ accountId: staff.id, limit: 1 });
    expect(event).toMatchObject({ result: 'success', client_id: payroll.clientId });
  });

  test('a closed account is told about data salvage through identity verification', async () => {
    const portal = await akamon.createClient({ name: 'Portal', redirectUris: ['http://127.0.0.1:9/portal'] });
    const account = await akamon.createReadyAccount();
    await akamon.deps.accountService.setStatus(account.commonId, 'revoked', 'graduation');
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, portal);
    const closed = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(closed.status).toBe(403);
    expect(closed.html).toContain('data-salvage services');
    expect(closed.html).toContain('verify your identity there with the ID card');
  });

  test('an error page links to the home page', async () => {
    const missing = await new Browser(akamon.url).visit(`${akamon.url}/interaction/nonexistent`);
    expect(missing.status).toBeGreaterThanOrEqual(400);
    expect(missing.status).toBeLessThan(500);
    expect(hrefs(missing)).toContain('/');
  });
});

describe('feedback for every change', () => {
  test('signing out of the account home: a confirmation in Akamon’s own words, then "You are signed out" with a way back', async () => {
    const { browser } = await homeAt(akamon, await akamon.createReadyAccount(), '/account');
    const confirm = await pressSignOut(browser, `${akamon.url}/account`);
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain('to end your Akamon sign-in on this device');
    expect(confirm.html).not.toContain('asks you to sign out');
    expect(confirm.html).not.toContain('sent you here');
    const done = await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
    expect(done.status).toBe(200);
    expect(done.html).toContain('<h1>You are signed out</h1>');
    expect(done.html).toContain('You have signed out of Akamon on this device');
    expect(hrefs(done)).toEqual(expect.arrayContaining(['/account/login', '/services']));
    // "Sign in again" asks for the password: the session is gone.
    const again = await browser.visit(`${akamon.url}/account/login`);
    expect(again.html).toMatch(/name="(identifier|password|account)"/);
  });

  test('"Stay signed in" says that only the account page was left', async () => {
    const { browser } = await homeAt(akamon, await akamon.createReadyAccount(), '/account');
    const confirm = await pressSignOut(browser, `${akamon.url}/account`);
    const stayed = await browser.submit(confirm, /\/session\/end\/confirm$/, {});
    expect(stayed.status).toBe(200);
    expect(stayed.html).toContain('You have signed out of your account page. You are still signed in to Akamon');
    expect((await browser.visit(`${akamon.url}/account`)).status).toBe(200);
  });

  test('signing out of the console is Akamon’s own sign-out too (in Japanese as in English); "Stay signed in" leads back to the console’s sign-in', async () => {
    const { browser } = await consoleOperator(akamon, 'helpdesk', null);
    browser.acceptLanguage = 'ja';
    const confirm = await pressSignOut(browser, `${akamon.url}/console`);
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain('<html lang="ja">');
    const lead = /<p class="lead">([\s\S]*?)<\/p>/.exec(confirm.html)?.[1] ?? '';
    expect(lead.replace(/<wbr>/g, '')).toBe(translator('ja')('logout.lead'));
    browser.acceptLanguage = 'en';
    const stayed = await browser.submit(confirm, /\/session\/end\/confirm$/, {});
    expect(stayed.status).toBe(200);
    expect(stayed.html).toContain('You have signed out of the operators’ console. You are still signed in to Akamon');
    expect(hrefs(stayed)).toContain('/console/login');
    expect(hrefs(stayed)).not.toContain('/account/login');
    // That sign-out is over: a later one's page does not lead to the console.
    expect(hrefs(await browser.visit(`${akamon.url}/session/end/success`))).toContain('/account/login');
  });

  test('signing out of the console altogether: "Sign in again" leads back to the console’s sign-in, once', async () => {
    const { browser } = await consoleOperator(akamon, 'helpdesk', null);
    const done = await browser.submit(await pressSignOut(browser, `${akamon.url}/console`), /\/session\/end\/confirm$/, { logout: 'yes' });
    expect(done.html).toContain('You have signed out of Akamon on this device');
    expect(hrefs(done)).toContain('/console/login');
    expect(hrefs(done)).not.toContain('/account/login');
    // Read once: a later sign-out page (another system's) is not the console's.
    expect(hrefs(await browser.visit(`${akamon.url}/session/end/success`))).toContain('/account/login');
  });

  test('another system’s sign-out asks whether to leave Akamon too, naming it', async () => {
    const library = await akamon.createClient({ name: 'Library', redirectUris: ['http://127.0.0.1:9/library'] });
    const browser = new Browser(akamon.url);
    await signIn(browser, akamon, library, await akamon.createReadyAccount());
    const confirm = await browser.visit(`${akamon.url}/session/end?client_id=${library.clientId}`);
    expect(confirm.html).toContain('Library sent you here to finish signing out');
  });

  test('a password change is confirmed once, after the sign-in it leads through', async () => {
    const account = await akamon.createReadyAccount();
    const { browser, page } = await homeAt(akamon, account, '/account/security');
    const next = 'Changed-Pass-2027-x';
    const changed = await browser.submit(page, /\/account\/security\/password$/, { current: account.password, new: next, confirm: next });
    expect(changed.status).toBe(200);
    expect(new URL(changed.url).pathname).toBe('/account/security');
    expect(changed.html).toContain('Your password was changed.');
    const reloaded = await browser.visit(`${akamon.url}/account/security`);
    expect(reloaded.status).toBe(200);
    expect(reloaded.html).not.toContain('Your password was changed.');
  });

  test('a refused recovery address is kept on the security page for correcting; the field is never filled otherwise', async () => {
    const typedEmail = (page: Page) => decode(/value="([^"]*)"/.exec(/<input[^>]*name="email"[^>]*>/.exec(page.html)?.[0] ?? '')?.[1] ?? '');
    const { browser, page } = await homeAt(akamon, await akamon.createReadyAccount(), '/account/security');
    // Not prefilled, not even with the university address (the person types the address they mean).
    expect(typedEmail(page)).toBe('');
    // The browser's own check (type=email) lets a host without a dot through.
    const refused = await browser.submit(page, /\/account\/security\/email$/, { email: 'taro.yamada@gmail' });
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('alert--error');
    expect(typedEmail(refused)).toBe('taro.yamada@gmail');
    expect(typedEmail(await browser.visit(`${akamon.url}/account/security`))).toBe('');
  });

  test('a pending recovery-email code form survives a reload', async () => {
    const { browser, page } = await homeAt(akamon, await akamon.createReadyAccount(), '/account/security');
    const sent = await browser.submit(page, /\/account\/security\/email$/, { email: 'pending-reload@example.com' });
    expect(sent.html).toContain('action="/account/security/email/confirm"');
    const reloaded = await browser.visit(`${akamon.url}/account/security`);
    expect(reloaded.status).toBe(200);
    expect(reloaded.html).toContain('action="/account/security/email/confirm"');
    expect(reloaded.html).toContain('pending-reload@example.com');
  });

  test('removing a method asks first; the only method is refused while MFA is required for the account', async () => {
    await freshTotpStep();
    const account = await akamon.createReadyAccount();
    const code = await withApp(akamon, account);
    const { browser, page } = await homeAt(akamon, account, '/account/security');
    // A fresh second factor first (the previous time step's code: the enrolment took the current one).
    const stepUp = await browser.submit(page, /\/remove$/, {});
    expect(stepUp.html).toContain('Verify your identity');
    const back = await browser.submit(stepUp, /\/totp$/, { code: await code(-1) });
    const confirm = await browser.submit(back, /\/remove$/, {});
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain('Remove Phone app?');
    expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(1);

    // The account now must use MFA: the question is not even asked, and the confirmed form is refused too.
    await akamon.deps.accountService.setMfaRequired(account.commonId, true);
    const refused = await browser.submit(back, /\/remove$/, {});
    expect(refused.status).toBe(409);
    expect(refused.html).toContain('cannot be removed. Add another method first');
    const confirmed = await browser.submit(confirm, /\/remove$/, {});
    expect(confirmed.status).toBe(409);
    expect(confirmed.html).toContain('cannot be removed');
    expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(1);
    expect((await akamon.deps.audit.list({ accountId: account.id, limit: 5 })).map((e) => e.action)).not.toContain('mfa.removed');

    // Not required any more: the confirmed form removes it.
    await akamon.deps.accountService.setMfaRequired(account.commonId, false);
    const removed = await browser.submit(confirm, /\/remove$/, {});
    expect(removed.status).toBe(200);
    expect(removed.html).toContain('The method was removed.');
    expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(0);
  });

  test('under a university-wide MFA requirement the only method stays; with two, one can go', async () => {
    const required = await startAkamon({ env: { AKAMON_MFA_REQUIRED_FROM: new Date(Date.now() - 86_400_000).toISOString() } });
    try {
      await freshTotpStep();
      const account = await required.createReadyAccount();
      const code = await withApp(required, account);
      const browser = new Browser(required.url);
      const verify = await enterCredentials(browser, await browser.visit(`${required.url}/account/security`), account.commonId, account.password);
      const page = await browser.submit(verify, /\/totp$/, { code: await code(-1) });
      expect(new URL(page.url).pathname).toBe('/account/security');
      const refused = await browser.submit(page, /\/remove$/, {});
      expect(refused.status).toBe(409);
      expect(refused.html).toContain('cannot be removed');

      await withApp(required, account, 'Tablet app', 1);
      const both = await browser.visit(`${required.url}/account/security`);
      const confirm = await browser.submit(both, /\/remove$/, {});
      expect(confirm.status).toBe(200);
      const removed = await browser.submit(confirm, /\/remove$/, {});
      expect(removed.html).toContain('The method was removed.');
      expect(await required.deps.mfa.factors(account.id)).toHaveLength(1);
    } finally {
      await required.close();
    }
  });
});

describe('the documented sign-in name works out of the box', () => {
  test('with the shipped configuration, 0123456789@utac.u-tokyo.ac.jp signs in and is shown in that form', async () => {
    const shipped = await startAkamon({ shippedRealm: true });
    try {
      expect(shipped.config.realmSuffix).toBe('utac.u-tokyo.ac.jp');
      const rp = await shipped.createClient();
      const account = await shipped.createReadyAccount();
      const browser = new Browser(shipped.url);
      const started = await startAuthorization(browser, shipped, rp);
      expect(started.page.html).toContain('utac.u-tokyo.ac.jp');
      const done = await enterCredentials(browser, started.page, `${account.commonId}@utac.u-tokyo.ac.jp`, account.password);
      expect(codeFrom(done)).toBeTruthy();
      const home = await browser.visit(`${shipped.url}/account`);
      expect(home.html).toContain(`${account.commonId}@utac.u-tokyo.ac.jp`);
    } finally {
      await shipped.close();
    }
  });

  test('the first run in development prints the sign-in name in that form', async () => {
    const database = await processDatabase();
    const server = await spawnServer({ port: await freePort(), env: database.env });
    try {
      await server.untilReady(120_000);
      const deadline = Date.now() + 10_000;
      while (!server.output().includes('Then sign in at') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(server.output()).toContain(`Then sign in at ${server.url}/account as 0123456789@utac.u-tokyo.ac.jp`);
    } finally {
      await server.stop();
      await database.drop();
    }
  }, 180_000);
});
