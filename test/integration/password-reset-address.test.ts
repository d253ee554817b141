import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { newCommonId, startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { signIn } from '../support/flows.ts';
import { startReset } from '../support/recovery.ts';
import { mailedCode } from '../support/smtp-sink.ts';

/**
 * Issue 14 point 2 at /recover: a reset goes to the confirmed recovery address first, else to the
 * address the university registered (`account create --email`, the import's email column) when
 * its domain is one the university trusts (AKAMON_TRUSTED_EMAIL_DOMAINS) and the university vouches
 * for it. Every other account gets exactly the page an unknown Common ID gets.
 */

let akamon: RunningAkamon;
let client: Awaited<ReturnType<RunningAkamon['createClient']>>;

beforeAll(async () => {
  akamon = await startAkamon({ env: { AKAMON_TRUST_PROXY: 'true', AKAMON_TRUSTED_EMAIL_DOMAINS: 'u-tokyo.ac.jp' } });
  client = await akamon.createClient({ name: 'Portal', redirectUris: ['http://127.0.0.1:9/portal'] });
});
afterAll(() => akamon.close());

const start = (commonId: string, ip: string) => startReset(akamon.url, commonId, ip);

const mailsTo = (address: string) => akamon.mails.filter((m) => m.to.includes(address.toLowerCase()));

describe('where a reset by email goes', () => {
  test('an account with only a university address in a trusted domain is reset through it, and told there', async () => {
    const commonId = newCommonId();
    const university = `${commonId}@g.ecc.u-tokyo.ac.jp`;
    const account = await akamon.createReadyAccount({ commonId, email: university });
    expect((await akamon.deps.accounts.findById(account.id))!.recovery_email).toBeNull();

    const { browser, page } = await start(account.commonId, '10.14.0.1');
    expect(page.status).toBe(200);
    expect(page.html).toContain('action="/recover/code"');
    expect(page.html).toContain(`${university[0]}****@g****.jp`);
    expect(page.html).not.toContain(university);
    const passwordPage = await browser.submit(page, /\/recover\/code$/, { code: mailedCode(akamon.mails, university) });
    expect(passwordPage.html).toContain('action="/recover/password"');
    const next = 'University-Reset-Password-7';
    const done = await browser.submit(passwordPage, /\/recover\/password$/, { new: next, confirm: next });
    expect(done.status).toBe(200);

    expect((await signIn(new Browser(akamon.url), akamon, client, { commonId: account.commonId, password: next })).code).toBeTruthy();
    expect(mailsTo(university)).toHaveLength(2);
    expect(mailsTo(university).at(-1)!.raw).toMatch(/was just reset/);
    const [audit] = await akamon.deps.audit.list({ accountId: account.id, limit: 1 });
    expect(audit).toMatchObject({ actor: 'self', action: 'password.reset', details: { via: 'university_email' } });
  });

  test('a confirmed recovery address comes first: the university address hears nothing', async () => {
    const account = await akamon.createReadyAccount({ email: `first-${Date.now()}@u-tokyo.ac.jp` });
    const row = (await akamon.deps.accounts.findById(account.id))!;
    const recovery = `own-${account.commonId}@example.com`;
    await akamon.deps.accounts.setRecoveryEmail(account.id, recovery);

    const { browser, page } = await start(account.commonId, '10.14.1.1');
    const passwordPage = await browser.submit(page, /\/recover\/code$/, { code: mailedCode(akamon.mails, recovery) });
    const next = 'Recovery-First-Password-8';
    await browser.submit(passwordPage, /\/recover\/password$/, { new: next, confirm: next });
    expect(mailsTo(recovery)).toHaveLength(2);
    expect(mailsTo(row.email!)).toHaveLength(0);
    const [audit] = await akamon.deps.audit.list({ accountId: account.id, limit: 1 });
    expect(audit).toMatchObject({ action: 'password.reset', details: { via: 'recovery_email' } });
  });

  test('an untrusted or unvouched university address, a suspended account and an unknown Common ID get one and the same page, and no mail', async () => {
    const untrusted = await akamon.createReadyAccount({ email: `untrusted-${Date.now()}@u-tokyo.ac.jp.example.com` });
    const unvouched = await akamon.createReadyAccount({ email: `unvouched-${Date.now()}@u-tokyo.ac.jp`, profile: { emailVerified: false } });
    const suspended = await akamon.createReadyAccount({ email: `suspended-${Date.now()}@u-tokyo.ac.jp` });
    await akamon.deps.database.db.updateTable('account').set({ status: 'suspended' }).where('id', '=', suspended.id).execute();
    const accounts = [untrusted, unvouched, suspended];
    const addresses = await Promise.all(accounts.map(async (a) => (await akamon.deps.accounts.findById(a.id))!.email!));
    const mailsBefore = akamon.mails.length;

    const pages = [];
    for (const [i, commonId] of [...accounts.map((a) => a.commonId), '4444444444'].entries()) pages.push((await start(commonId, `10.14.2.${i + 1}`)).page);
    const strip = (html: string) => html.replace(/(value|nonce)="[^"]*"/g, '').replace(/Reference: [\w-]+/g, '');
    for (const page of pages) {
      expect(page.status).toBe(200);
      expect(page.html).not.toContain('action="/recover/code"');
      expect(strip(page.html)).toBe(strip(pages.at(-1)!.html));
    }
    expect(akamon.mails.length).toBe(mailsBefore);
    for (const address of addresses) expect(mailsTo(address)).toHaveLength(0);
  });
});
