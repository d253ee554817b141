import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { codeFrom, enterCredentials, redeem, signIn, startAuthorization, tokenRequest } from '../support/flows.ts';

let akamon: RunningAkamon;
beforeAll(async () => {
  akamon = await startAkamon();
});
afterAll(() => akamon.close());

const admin = (path: string, method: string, body?: unknown) =>
  fetch(`${akamon.url}/admin/api${path}`, {
    method,
    headers: { authorization: `Bearer ${akamon.operatorToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

describe('per-client rules, error 53003', () => {
  test('allowed affiliations: others see the page with the reason, the client gets access_denied, the log keeps the rule', async () => {
    const utas = await akamon.createClient({ name: 'UTAS', allowedAffiliations: ['student', 'faculty'], redirectUris: ['http://127.0.0.1:9/utas'] });
    const student = await akamon.createReadyAccount({ affiliation: 'student' });
    const staff = await akamon.createReadyAccount({ affiliation: 'staff' });
    expect((await signIn(new Browser(akamon.url), akamon, utas, student)).code).toBeTruthy();

    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, utas);
    const denied = await enterCredentials(browser, started.page, staff.commonId, staff.password);
    expect(denied.status).toBe(403);
    expect(denied.html).toContain('You don&#39;t have access to this');
    expect(denied.html).toContain('53003');
    expect(denied.html).toContain('your affiliation is not among them');
    const back = await browser.submit(denied, /\/leave$/, {});
    expect(new URL(back.url).searchParams.get('error')).toBe('access_denied');
    expect(new URL(back.url).searchParams.get('error_description')).toBe('the account is not allowed to use this system (affiliation_not_allowed)');
    const silent = await startAuthorization(browser, akamon, utas, { prompt: 'none' });
    expect(new URL(silent.page.url).searchParams.get('error')).toBe('access_denied');
    const [event] = await akamon.deps.signinLog.list({ accountId: staff.id, limit: 1 });
    expect(event).toMatchObject({ result: 'failure', reason: 'access_denied.affiliation_not_allowed', client_id: utas.clientId });
  });

  // Guards issue 13, point 6: a relying party must tell a refusal from a person who changed their mind.
  test('leaving the 53003 page is a refusal naming the rule; leaving a sign-in is a cancel', async () => {
    const payroll = await akamon.createClient({ name: 'Payroll', allowedAffiliations: ['staff'], redirectUris: ['http://127.0.0.1:9/payroll'] });
    const student = await akamon.createReadyAccount({ affiliation: 'student' });
    const browser = new Browser(akamon.url);
    const denied = await enterCredentials(browser, (await startAuthorization(browser, akamon, payroll)).page, student.commonId, student.password);
    const refusal = new URL((await browser.submit(denied, /\/leave$/, {})).url).searchParams;
    expect(refusal.get('error')).toBe('access_denied');
    expect(refusal.get('error_description')).toBe('the account is not allowed to use this system (affiliation_not_allowed)');
    const [logged] = await akamon.deps.signinLog.list({ accountId: student.id, limit: 1 });
    expect(logged).toMatchObject({ result: 'failure', reason: 'access_denied.affiliation_not_allowed', client_id: payroll.clientId });

    // A person who may use the system leaves at a step instead (setting up a second factor): a
    // cancel, which says so and logs no refusal.
    const vpn = await akamon.createClient({ name: 'VPN', requireMfa: true, redirectUris: ['http://127.0.0.1:9/vpn-cancel'] });
    const other = await akamon.createReadyAccount({ affiliation: 'student' });
    const fresh = new Browser(akamon.url);
    const enrol = await enterCredentials(fresh, (await startAuthorization(fresh, akamon, vpn)).page, other.commonId, other.password);
    expect(enrol.html).toContain('More information required');
    const cancel = new URL((await fresh.submit(enrol, /\/abort$/, {})).url).searchParams;
    expect(cancel.get('error')).toBe('access_denied');
    expect(cancel.get('error_description')).toBe('the person left the sign-in');
    expect(await akamon.deps.signinLog.list({ accountId: other.id, limit: 1 })).toEqual([expect.objectContaining({ result: 'success', reason: 'password' })]);
  });

  test('if the rules admit the account by the time the person leaves the 53003 page, the sign-in carries on', async () => {
    const desk = await akamon.createClient({ name: 'Help desk', allowedAffiliations: ['staff'], redirectUris: ['http://127.0.0.1:9/desk'] });
    const student = await akamon.createReadyAccount({ affiliation: 'student' });
    const browser = new Browser(akamon.url);
    const denied = await enterCredentials(browser, (await startAuthorization(browser, akamon, desk)).page, student.commonId, student.password);
    expect(denied.status).toBe(403);
    expect((await admin(`/clients/${desk.clientId}/accounts`, 'POST', { commonId: student.commonId, effect: 'allow' })).status).toBe(200);
    expect(codeFrom(await browser.submit(denied, /\/leave$/, {}))).toBeTruthy();
  });

  test('an allow-list entry admits an account of another affiliation; a deny-list entry wins over everything', async () => {
    const lab = await akamon.createClient({ name: 'Lab server', allowedAffiliations: ['faculty'], redirectUris: ['http://127.0.0.1:9/lab'] });
    const guest = await akamon.createReadyAccount({ affiliation: 'guest' });
    const professor = await akamon.createReadyAccount({ affiliation: 'faculty' });
    expect((await admin(`/clients/${lab.clientId}/accounts`, 'POST', { commonId: guest.commonId, effect: 'allow' })).status).toBe(200);
    expect((await signIn(new Browser(akamon.url), akamon, lab, guest)).code).toBeTruthy();
    expect((await admin(`/clients/${lab.clientId}/accounts`, 'POST', { commonId: professor.commonId, effect: 'deny' })).status).toBe(200);
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, lab);
    const denied = await enterCredentials(browser, started.page, professor.commonId, professor.password);
    expect(denied.html).toContain('is not allowed to use Lab server');
    const shown = (await (await admin(`/clients/${lab.clientId}`, 'GET')).json()) as { accountRules: unknown[] };
    expect(shown.accountRules).toEqual(
      expect.arrayContaining([
        { commonId: guest.commonId, effect: 'allow' },
        { commonId: professor.commonId, effect: 'deny' },
      ]),
    );
    expect((await admin(`/clients/${lab.clientId}/accounts/${professor.commonId}`, 'DELETE')).status).toBe(204);
    expect((await signIn(new Browser(akamon.url), akamon, lab, professor)).code).toBeTruthy();
  });

  test('a rule change applies to the very next request, and ends the refresh tokens and sessions it now denies', async () => {
    const wiki = await akamon.createClient({ name: 'Wiki', redirectUris: ['http://127.0.0.1:9/wiki'] });
    const account = await akamon.createReadyAccount({ affiliation: 'staff' });
    const browser = new Browser(akamon.url);
    const result = await signIn(browser, akamon, wiki, account);
    const tokens = await redeem(akamon, wiki, result.code!, result.verifier);
    expect((await admin(`/clients/${wiki.clientId}`, 'PATCH', { allowedAffiliations: ['student'] })).status).toBe(200);
    const refresh = await tokenRequest(akamon, wiki, { grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token });
    expect(refresh.body.error).toBe('invalid_grant');
    expect((await fetch(`${akamon.url}/me`, { headers: { authorization: `Bearer ${tokens.body.access_token}` } })).status).toBe(401);
    const silent = await startAuthorization(browser, akamon, wiki, { prompt: 'none' });
    expect(new URL(silent.page.url).searchParams.get('error')).toBe('access_denied');
    expect((await admin(`/clients/${wiki.clientId}`, 'PATCH', { allowedAffiliations: null })).status).toBe(200);
    expect(codeFrom((await startAuthorization(browser, akamon, wiki, { prompt: 'none' })).page)).toBeTruthy();
  });

  test("a client's first deny entry ends that account's tokens at the next request; its removal restores them", async () => {
    // Tokens issued while the client names nobody (the account lookup is skipped then).
    const chat = await akamon.createClient({ name: 'Chat', redirectUris: ['http://127.0.0.1:9/chat'] });
    const account = await akamon.createReadyAccount();
    const result = await signIn(new Browser(akamon.url), akamon, chat, account);
    const tokens = await redeem(akamon, chat, result.code!, result.verifier);
    const userinfo = () => fetch(`${akamon.url}/me`, { headers: { authorization: `Bearer ${tokens.body.access_token}` } });
    expect((await userinfo()).status).toBe(200);
    expect((await akamon.deps.clientStore.find(chat.clientId))?.has_account_rules).toBe(false);

    expect((await admin(`/clients/${chat.clientId}/accounts`, 'POST', { commonId: account.commonId, effect: 'deny' })).status).toBe(200);
    expect((await akamon.deps.clientStore.find(chat.clientId))?.has_account_rules).toBe(true);
    expect((await userinfo()).status).toBe(401);
    expect((await admin(`/clients/${chat.clientId}/accounts/${account.commonId}`, 'DELETE')).status).toBe(204);
    expect((await userinfo()).status).toBe(200);
    const refreshed = await tokenRequest(akamon, chat, { grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token });
    expect(refreshed.status).toBe(200);
  });

  test('bad rule input is refused with a clear error', async () => {
    const client = await akamon.createClient({ name: 'Rules', redirectUris: ['http://127.0.0.1:9/rules'] });
    const cases: Array<[string, string, unknown]> = [
      [`/clients/${client.clientId}`, 'PATCH', { allowedAffiliations: ['wizard'] }],
      [`/clients/${client.clientId}`, 'PATCH', { allowedAffiliations: [] }],
      [`/clients/${client.clientId}`, 'PATCH', { allowedStatuses: ['frozen'] }],
      [`/clients/${client.clientId}/accounts`, 'POST', { commonId: '123', effect: 'allow' }],
      [`/clients/${client.clientId}/accounts`, 'POST', { commonId: '0123456789', effect: 'maybe' }],
    ];
    for (const [path, method, body] of cases) {
      const response = await admin(path, method, body);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error_description: string }).error_description).toEqual(expect.any(String));
    }
  });
});

describe('security education', () => {
  test("a client that requires this year's education shows why (53003); prompt=none gets interaction_required; passing opens it at once", async () => {
    const wifi = await akamon.createClient({ name: 'Wi-Fi account menu', requireEducation: true, redirectUris: ['http://127.0.0.1:9/wifi'] });
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, wifi);
    const denied = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(denied.html).toContain('53003');
    expect(denied.html).toContain('information-security education');
    const silent = await startAuthorization(browser, akamon, wifi, { prompt: 'none' });
    expect(new URL(silent.page.url).searchParams.get('error')).toBe('interaction_required');

    const year = akamon.deps.education.currentYear();
    await akamon.deps.education.record(account.id, year - 1, `${year - 1}-06-01`);
    expect(new URL((await startAuthorization(browser, akamon, wifi, { prompt: 'none' })).page.url).searchParams.get('error')).toBe('interaction_required');
    const recorded = await admin('/education', 'POST', { commonId: account.commonId, year });
    expect(recorded.status).toBe(200);
    expect(codeFrom((await startAuthorization(browser, akamon, wifi, { prompt: 'none' })).page)).toBeTruthy();
    const shown = (await (await admin(`/accounts/${account.commonId}`, 'GET')).json()) as { education: { year: number; passedOn: string | null } };
    expect(shown.education).toEqual({ year, passedOn: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/) });
  });

  test('records are checked: the date must be real and inside the academic year', async () => {
    const account = await akamon.createReadyAccount();
    const year = akamon.deps.education.currentYear();
    for (const [y, date, code] of [
      [year, '2026-02-30', 'invalid_date'],
      [year, 'yesterday', 'invalid_date'],
      [1900, undefined, 'invalid_year'],
      [year, `${year + 2}-05-01`, 'date_outside_year'],
    ] as const) {
      const response = await admin('/education', 'POST', { commonId: account.commonId, year: y, passedOn: date });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: string }).error).toBe(code);
    }
    expect((await admin('/education', 'POST', { commonId: account.commonId, year, passedOn: `${year}-04-01` })).status).toBe(200);
  });
});

test("the account home shows this year's education status", async () => {
  const account = await akamon.createReadyAccount();
  const browser = new Browser(akamon.url);
  const home = await enterCredentials(browser, await browser.visit(`${akamon.url}/account`), account.commonId, account.password);
  const year = akamon.deps.education.currentYear();
  expect(home.html).toContain(`Not taken yet (academic year ${year})`);
  await akamon.deps.education.record(account.id, year, `${year}-05-20`);
  const again = await browser.visit(`${akamon.url}/account`);
  expect(again.html).toContain(`Passed on ${year}-05-20 (academic year ${year})`);
});

describe('service directory', () => {
  test('lists the listed clients with their MFA mark, and for a signed-in person says what the rules enforce', async () => {
    const open = await akamon.createClient({
      name: 'AAA Library',
      listed: true,
      description: 'Books and journals',
      homepageUrl: 'https://lib.example.ac.jp/',
      redirectUris: ['http://127.0.0.1:9/lib'],
    });
    const studentsOnly = await akamon.createClient({ name: 'AAB Course registration', listed: true, allowedAffiliations: ['student'], redirectUris: ['http://127.0.0.1:9/reg'] });
    const education = await akamon.createClient({ name: 'AAC Wi-Fi menu', listed: true, requireEducation: true, redirectUris: ['http://127.0.0.1:9/wifimenu'] });
    await akamon.createClient({ name: 'AAD VPN', listed: true, requireMfa: true, redirectUris: ['http://127.0.0.1:9/vpn2'] });
    await akamon.createClient({ name: 'AAE Hidden', redirectUris: ['http://127.0.0.1:9/hidden'] });

    const anonymous = await (await fetch(`${akamon.url}/services`, { headers: { 'accept-language': 'en' } })).text();
    expect(anonymous).toContain('AAA Library');
    expect(anonymous).toContain('Books and journals');
    expect(anonymous).toContain('href="https://lib.example.ac.jp/"');
    expect(anonymous).not.toContain('AAE Hidden');
    expect(anonymous).toMatch(/AAD VPN[\s\S]*?MFA: ○/);
    expect(anonymous).toMatch(/AAA Library[\s\S]*?MFA: ×/);
    expect(anonymous).toContain('Sign in to see which systems you can use');

    const staff = await akamon.createReadyAccount({ affiliation: 'staff' });
    const browser = new Browser(akamon.url);
    await enterCredentials(browser, await browser.visit(`${akamon.url}/account`), staff.commonId, staff.password);
    const page = (await browser.visit(`${akamon.url}/services`)).html;
    const entry = (name: string) => page.slice(page.indexOf(name), page.indexOf('</li>', page.indexOf(name)));
    // The directory and the authorization endpoint give the same answer for each client.
    for (const [client, name] of [
      [open, 'AAA Library'],
      [studentsOnly, 'AAB Course registration'],
      [education, 'AAC Wi-Fi menu'],
    ] as const) {
      const silent = await startAuthorization(browser, akamon, client, { prompt: 'none' });
      const admitted = new URL(silent.page.url).searchParams.has('code');
      expect([name, entry(name).includes('You can use this.')]).toEqual([name, admitted]);
    }
    expect(entry('AAB Course registration')).toContain('your affiliation is not among them');
    expect(entry('AAC Wi-Fi menu')).toContain('information-security education');
  });
});

test('allowed statuses: a client that admits suspended accounts lets one sign in; SSO elsewhere is still refused', async () => {
  const export_ = await akamon.createClient({ name: 'Data export', allowedStatuses: ['active', 'suspended'], redirectUris: ['http://127.0.0.1:9/export'] });
  const other = await akamon.createClient({ name: 'Mail', redirectUris: ['http://127.0.0.1:9/mail2'] });
  const account = await akamon.createReadyAccount();
  await akamon.deps.accountService.setStatus(account.commonId, 'suspended');
  const browser = new Browser(akamon.url);
  const result = await signIn(browser, akamon, export_, account);
  expect(result.code).toBeTruthy();
  const elsewhere = await startAuthorization(browser, akamon, other, { prompt: 'none' });
  expect(new URL(elsewhere.page.url).searchParams.get('error')).toBe('access_denied');
  const shown = await startAuthorization(browser, akamon, other);
  expect(shown.page.html).toContain('This account is suspended');
});
