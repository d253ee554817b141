import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { generate } from 'otplib';
import { adminApi, startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { freshTotpStep, redeem, signIn, tokenRequest } from '../support/flows.ts';
import { mailedCode } from '../support/smtp-sink.ts';
import { startReset } from '../support/recovery.ts';

let akamon: RunningAkamon;
let client: Awaited<ReturnType<RunningAkamon['createClient']>>;

beforeAll(async () => {
  // Behind a (pretend) proxy, so each test can come from its own address.
  akamon = await startAkamon({ env: { AKAMON_TRUST_PROXY: 'true' } });
  client = await akamon.createClient({ name: 'Portal', redirectUris: ['http://127.0.0.1:9/portal'] });
});
afterAll(() => akamon.close());

async function withRecoveryEmail() {
  const account = await akamon.createReadyAccount();
  const email = `reset-${account.commonId}@example.com`;
  await akamon.deps.accounts.setRecoveryEmail(account.id, email);
  return { ...account, email };
}

/** A browser at the code page of a reset for `commonId` (each from its own address). */
const start = (commonId: string, ip: string) => startReset(akamon.url, commonId, ip);

describe('forgotten password', () => {
  test('code to the masked recovery email, then a new password under the policy; everything else ends and a notice is mailed', async () => {
    const account = await withRecoveryEmail();
    const session = new Browser(akamon.url);
    const signed = await signIn(session, akamon, client, account);
    const tokens = await redeem(akamon, client, signed.code!, signed.verifier);

    const { browser, page } = await start(account.commonId, '10.9.0.1');
    expect(page.html).toContain('Check your email');
    expect(page.html).toMatch(/r\*\*\*\*@e\*\*\*\*\.com/);
    expect(page.html).not.toContain(account.email);
    const code = mailedCode(akamon.mails, account.email);
    const wrong = await browser.submit(page, /\/recover\/code$/, { code: code === '000000' ? '111111' : '000000' });
    expect(wrong.status).toBe(400);
    const passwordPage = await browser.submit(wrong, /\/recover\/code$/, { code });
    expect(passwordPage.html).toContain('Choose a new password');
    const weak = await browser.submit(passwordPage, /\/recover\/password$/, { new: 'password', confirm: 'password' });
    expect(weak.status).toBe(400);
    expect(weak.html).toContain('It is too short');
    const next = 'Recovered-Password-42';
    const done = await browser.submit(weak, /\/recover\/password$/, { new: next, confirm: next });
    expect(done.html).toContain('Your password was changed');

    expect((await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token })).body.error).toBe('invalid_grant');
    const notice = akamon.mails.filter((m) => m.to.includes(account.email)).at(-1)!;
    expect(notice.raw).toMatch(/was just reset/);
    expect((await signIn(new Browser(akamon.url), akamon, client, { commonId: account.commonId, password: next })).code).toBeTruthy();
    const old = await akamon.deps.passwordSignin.signIn({ commonId: account.commonId, password: account.password, ip: '10.9.0.2', userAgent: null, clientId: null });
    expect(old.ok).toBe(false);
    const [audit] = await akamon.deps.audit.list({ accountId: account.id, limit: 1 });
    expect(audit).toMatchObject({ actor: 'self', action: 'password.reset' });
    // The used code and the finished flow cannot be replayed.
    const replay = await browser.submit(passwordPage, /\/recover\/password$/, { new: 'Another-Password-43', confirm: 'Another-Password-43' });
    expect(replay.status).toBe(400);
    expect(replay.html).toContain('Start again');
  });

  test('an account with MFA must also pass a second factor, and keeps it', async () => {
    const account = await withRecoveryEmail();
    const { secret, sealed } = akamon.deps.mfa.pendingTotp();
    expect((await akamon.deps.mfa.confirmTotp(account.id, sealed, await generate({ secret }), 'App')).ok).toBe(true);
    const { browser, page } = await start(account.commonId, '10.9.1.1');
    const factor = await browser.submit(page, /\/recover\/code$/, { code: mailedCode(akamon.mails, account.email) });
    expect(factor.html).toContain('also needs one of your second factors');
    // The same "Verify your identity" page as at sign-in, with a way out for a lost method.
    expect(factor.html).toContain('Verify your identity');
    const help = await browser.visit(`${akamon.url}${/href="([^"]+)">I can&#39;t use any of these methods/.exec(factor.html)![1].replace(/&amp;/g, '&')}`);
    expect(help.status).toBe(200);
    expect(help.html).toContain('Ask the account office');
    const back = await browser.visit(`${akamon.url}${/href="([^"]+)">Back to the verification/.exec(help.html)![1]}`);
    expect(back.html).toContain('name="code"');
    const wrong = await browser.submit(back, /\/recover\/factor\/totp$/, { code: '000000' });
    expect(wrong.status).toBe(400);
    const passwordPage = await browser.submit(wrong, /\/recover\/factor\/totp$/, { code: await generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 }) });
    expect(passwordPage.html).toContain('Choose a new password');
    const done = await browser.submit(passwordPage, /\/recover\/password$/, { new: 'Mfa-Kept-Password-1', confirm: 'Mfa-Kept-Password-1' });
    expect(done.html).toContain('Your password was changed');
    expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(1);
  });

  test('no recovery email and unknown Common IDs get the same page, which sends people to the office', async () => {
    const without = await akamon.createReadyAccount();
    const pages = [await start(without.commonId, '10.9.2.1'), await start('4444444444', '10.9.2.2')];
    for (const { page } of pages) {
      expect(page.html).toContain('reset your password online');
      expect(page.html).toContain('no email address for password reset is registered');
      expect(page.html).toContain('account office');
      expect(page.html).toContain('href="/recover"');
    }
    const strip = (html: string) => html.replace(/(value|nonce)="[^"]*"/g, '').replace(/Reference: [\w-]+/g, '');
    expect(strip(pages[0].page.html)).toBe(strip(pages[1].page.html));
  });

  test('the captcha is required and single use; a forged or missing one is refused', async () => {
    const account = await withRecoveryEmail();
    const browser = new Browser(akamon.url);
    browser.extraHeaders = { 'x-forwarded-for': '10.9.3.1' };
    const first = await browser.visit(`${akamon.url}/recover`);
    for (const captcha of ['', 'forged', Buffer.from('{"challenge":"x"}').toString('base64')]) {
      const refused = await browser.submit(first, /\/recover\/start$/, { identifier: account.commonId, captcha });
      expect(refused.status).toBe(400);
    }
    expect(akamon.mails.filter((m) => m.to.includes(account.email))).toHaveLength(0);
  });

  test('starting resets is rate-limited per address, and codes allow five tries', async () => {
    const account = await withRecoveryEmail();
    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) statuses.push((await start('5555555551', '10.9.4.1')).page.status);
    expect(statuses.slice(0, 5).every((s) => s === 200)).toBe(true);
    expect(statuses[5]).toBe(429);

    const { browser, page } = await start(account.commonId, '10.9.4.2');
    const code = mailedCode(akamon.mails, account.email);
    let current = page;
    for (let i = 0; i < 5; i += 1) current = await browser.submit(current, /\/recover\/code$/, { code: String((Number(code) + 1 + i) % 1_000_000).padStart(6, '0') });
    // The code is spent, and the account's wrong codes now lock its mailed codes for a while.
    const late = await browser.submit(current, /\/recover\/code$/, { code });
    expect(late.status).toBe(429);
    expect(Number(late.headers.get('retry-after'))).toBeGreaterThan(0);
    await akamon.deps.mfa.clearLocks(account.id);
    const spent = await browser.submit(current, /\/recover\/code$/, { code });
    expect(spent.status).toBe(400);
    expect(spent.html).toContain('Start again');
  });

  // Found by a security review: each code died after five wrong tries, but a new reset sent a new
  // one and the wrong tries counted nowhere else, so guessing went on without end.
  test("wrong codes count against the account across resets, like a second factor's: the next reset's right code waits", async () => {
    const account = await withRecoveryEmail();
    const wrongCodes = async (ip: string) => {
      const { browser, page } = await start(account.commonId, ip);
      const code = mailedCode(akamon.mails, account.email);
      let current = page;
      for (let i = 0; i < 3; i += 1) current = await browser.submit(current, /\/recover\/code$/, { code: String((Number(code) + 1 + i) % 1_000_000).padStart(6, '0') });
      return current.status;
    };
    expect(await wrongCodes('10.9.8.1')).toBe(400);
    expect(await wrongCodes('10.9.8.2')).toBe(429);
    const { browser, page } = await start(account.commonId, '10.9.8.3');
    const right = await browser.submit(page, /\/recover\/code$/, { code: mailedCode(akamon.mails, account.email) });
    expect(right.status).toBe(429);
    expect(right.html).not.toContain('Choose a new password');
    // The help desk's unlock lifts it.
    expect((await adminApi(akamon, 'POST', `/accounts/${account.commonId}/unlock`)).status).toBe(200);
    const again = await browser.submit(page, /\/recover\/code$/, { code: mailedCode(akamon.mails, account.email) });
    expect(again.html).toContain('Choose a new password');
  });

  // Found by a review: a code mailed to an address someone else set was still good after the
  // owner's ID-card recovery removed that address and the factors (which had blocked the reset).
  test('a code mailed to an address the account no longer resets to is refused, at each later step', async () => {
    const account = await akamon.createReadyAccount();
    await freshTotpStep();
    const pending = akamon.deps.mfa.pendingTotp();
    await akamon.deps.mfa.confirmTotp(account.id, pending.sealed, await generate({ secret: pending.secret }), 'Phone');
    const intruder = `intruder-${account.commonId}@example.com`;
    await akamon.deps.accounts.setRecoveryEmail(account.id, intruder);
    const { browser, page } = await startReset(akamon.url, account.commonId, '10.77.0.90');
    expect(page.html).toContain('Check your email');
    const code = mailedCode(akamon.mails, intruder);
    // The owner's ID-card recovery: every factor and the recovery email removed.
    expect((await akamon.deps.idv.recover((await akamon.deps.accounts.findById(account.id))!, 'mfa')).ok).toBe(true);
    const refused = await browser.submit(page, /\/recover\/code$/, { code });
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('This reset has expired or was already used');
    const before = (await akamon.deps.accounts.findById(account.id))!.password_hash;

    // A flow already at its last step when the address changed is over too.
    const other = await akamon.createReadyAccount();
    const first = `first-${other.commonId}@example.com`;
    await akamon.deps.accounts.setRecoveryEmail(other.id, first);
    const started = await startReset(akamon.url, other.commonId, '10.77.0.91');
    const passwordPage = await started.browser.submit(started.page, /\/recover\/code$/, { code: mailedCode(akamon.mails, first) });
    expect(passwordPage.html).toContain('name="new"');
    await akamon.deps.accounts.setRecoveryEmail(other.id, `second-${other.commonId}@example.com`);
    const late = await started.browser.submit(passwordPage, /\/recover\/password$/, { new: 'Intruder-Chose-This-42', confirm: 'Intruder-Chose-This-42' });
    expect(late.status).toBe(400);
    expect(late.html).toContain('This reset has expired or was already used');
    expect((await akamon.deps.accounts.findById(account.id))!.password_hash).toBe(before);
  });

  test('an expired code is refused', async () => {
    const account = await withRecoveryEmail();
    const { browser, page } = await start(account.commonId, '10.9.6.1');
    const code = mailedCode(akamon.mails, account.email);
    await akamon.deps.database.db
      .updateTable('otp_code')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('account_id', '=', account.id)
      .execute();
    const late = await browser.submit(page, /\/recover\/code$/, { code });
    expect(late.status).toBe(400);
    expect(late.html).toContain('has expired, was already used');
  });

  test('if the mail server is down the person is told to try again, and nothing is used up', async () => {
    const account = await withRecoveryEmail();
    akamon.smtp.failNext(1);
    const down = await start(account.commonId, '10.9.5.1');
    expect(down.page.status).toBe(503);
    expect(down.page.html).toContain('could not be sent just now');
    const again = await start(account.commonId, '10.9.5.2');
    expect(again.page.html).toContain('Check your email');
  });
});
