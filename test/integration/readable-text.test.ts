import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { adminApi, startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser, decode } from '../support/browser.ts';
import { enterCredentials, startAuthorization } from '../support/flows.ts';

// Issue 14 point 7, on the pages: dates in the university's time zone and an unambiguous form per
// language, a system's name in the page's language, and the password-length advisory only for
// people who use a system with the limit.

let akamon: RunningAkamon;

beforeAll(async () => {
  akamon = await startAkamon();
}, 60_000);

afterAll(async () => {
  await akamon?.close();
});

/** The page's text as a person reads it: no markup, no phrase-break marks, no entities. */
const text = (html: string) => decode(html.replace(/<wbr>/g, '').replace(/<[^>]+>/g, ' ')).replace(/\s+/g, ' ');

function browserIn(language: string): Browser {
  const browser = new Browser(akamon.url);
  browser.acceptLanguage = language;
  return browser;
}

describe('dates as people read them', () => {
  test('the account home shows a sign-in at 10:08 UTC as 19:08 in Tokyo, day first in words for en-US, in 年月日 for ja', async () => {
    const account = await akamon.createReadyAccount();
    const client = await akamon.createClient({ name: 'Date RP' });
    await akamon.deps.signinLog.record({ accountId: account.id, clientId: client.clientId, ip: '192.0.2.8', userAgent: null, result: 'success', reason: 'password' });
    await akamon.deps.database.db
      .updateTable('signin_event')
      .set({ occurred_at: new Date('2026-12-04T10:08:00Z') as never })
      .where('account_id', '=', account.id)
      .where('ip', '=', '192.0.2.8')
      .execute();

    for (const [language, shown] of [
      ['en-US,en;q=0.9', '4 Dec 2026, 19:08'],
      ['ja', '2026年12月4日 19:08'],
    ] as const) {
      const browser = browserIn(language);
      const home = await enterCredentials(browser, await browser.visit(`${akamon.url}/account`), account.commonId, account.password);
      expect(home.url).toBe(`${akamon.url}/account`);
      const page = text(home.html);
      expect(page).toContain(shown);
      // No numeric day/month form anywhere (04/12/2026 reads as 12 April in the US).
      expect(page).not.toMatch(/\b\d{1,2}\/\d{1,2}\/\d{4}\b/);
    }
  });
});

describe("a system's name in the page's language", () => {
  test('the sign-in lead, the 53003 page and the service directory use the Japanese name on Japanese pages, the name on English ones', async () => {
    const client = await akamon.createClient({ name: 'Library System', nameJa: '図書館システム', listed: true, allowedAffiliations: ['faculty'] });
    const ja = await startAuthorization(browserIn('ja'), akamon, client, { ui_locales: 'ja' });
    expect(text(ja.page.html)).toContain('図書館システム');
    expect(text(ja.page.html)).not.toContain('Library System');
    const en = await startAuthorization(browserIn('en'), akamon, client, { ui_locales: 'en' });
    expect(text(en.page.html)).toContain('Library System');
    expect(text(en.page.html)).not.toContain('図書館システム');

    // A student is refused (faculty only): the 53003 page names the system in Japanese.
    const student = await akamon.createReadyAccount({ affiliation: 'student' });
    const browser = browserIn('ja');
    const started = await startAuthorization(browser, akamon, client, { ui_locales: 'ja' });
    const denied = await enterCredentials(browser, started.page, student.commonId, student.password);
    expect(denied.status).toBe(403);
    expect(text(denied.html)).toContain('図書館システム');
    expect(text(denied.html)).not.toContain('Library System');

    const directoryJa = text(await (await fetch(`${akamon.url}/services`, { headers: { 'accept-language': 'ja' } })).text());
    expect(directoryJa).toContain('図書館システム');
    const directoryEn = text(await (await fetch(`${akamon.url}/services`, { headers: { 'accept-language': 'en' } })).text());
    expect(directoryEn).toContain('Library System');
    expect(directoryEn).not.toContain('図書館システム');

    // Set and cleared through the admin API: without it the name serves both languages.
    const shown = await adminApi(akamon, 'GET', `/clients/${client.clientId}`);
    expect(shown.body.nameJa).toBe('図書館システム');
    const cleared = await adminApi(akamon, 'PATCH', `/clients/${client.clientId}`, { nameJa: null });
    expect(cleared.status).toBe(200);
    expect(cleared.body.client.nameJa).toBeNull();
    const row = await akamon.deps.database.db.selectFrom('client').select('name_ja').where('client_id', '=', client.clientId).executeTakeFirstOrThrow();
    expect(row.name_ja).toBeNull();
    const after = await startAuthorization(browserIn('ja'), akamon, client, { ui_locales: 'ja' });
    expect(text(after.page.html)).toContain('Library System');
    const refused = await adminApi(akamon, 'PATCH', `/clients/${client.clientId}`, { nameJa: '図'.repeat(201) });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_name');
  });
});

describe('the password-length advisory concerns only people who use such a system', () => {
  const LONG = 'Kq7#vLm2$pRt9w-Kq7#vLm2$pRt9w-Kq7#vLm2$pRt9w';

  test('a student (UTAS is for students) is told and warned; a staff member is neither', async () => {
    await akamon.createClient({ name: 'UTAS', maxPasswordLength: 32, allowedAffiliations: ['student'] });
    const notice = 'Some systems accept passwords of at most 32 characters: UTAS.';

    const student = await akamon.createAccount({ affiliation: 'student' });
    const studentBrowser = browserIn('en');
    const studentChange = await enterCredentials(studentBrowser, await studentBrowser.visit(`${akamon.url}/account`), student.commonId, student.password);
    expect(studentChange.html).toMatch(/name="new"/);
    expect(text(studentChange.html)).toContain(notice);
    // A longer password is held back once with the warning.
    const warned = await studentBrowser.submit(studentChange, /\/change$/, { current: student.password, new: LONG, confirm: LONG });
    expect(warned.status).toBe(400);
    expect(text(warned.html)).toContain(`Your new password is ${LONG.length} characters long`);
    expect((await akamon.deps.accounts.findById(student.id))!.must_change_password).toBe(true);

    const staff = await akamon.createAccount({ affiliation: 'staff' });
    const staffBrowser = browserIn('en');
    const staffChange = await enterCredentials(staffBrowser, await staffBrowser.visit(`${akamon.url}/account`), staff.commonId, staff.password);
    expect(staffChange.html).toMatch(/name="new"/);
    expect(text(staffChange.html)).not.toContain('at most 32 characters');
    // The same long password goes through at once: UTAS is not theirs.
    const done = await staffBrowser.submit(staffChange, /\/change$/, { current: staff.password, new: LONG, confirm: LONG });
    expect(done.status).toBe(200);
    expect((await akamon.deps.accounts.findById(staff.id))!.must_change_password).toBe(false);
    const security = await staffBrowser.visit(`${akamon.url}/account/security`);
    expect(security.status).toBe(200);
    expect(text(security.html)).not.toContain('at most 32 characters');
  });
});
