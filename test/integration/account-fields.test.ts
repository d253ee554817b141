import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { adminApi, newCommonId, type RunningAkamon, startAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { enterCredentials, startAuthorization } from '../support/flows.ts';

// The account fields behind claims and access rules (src/account/account-fields.ts) through the
// admin API, as the CLI and other operator tools use it, and the department rule's 53003 page.

let akamon: RunningAkamon;
beforeAll(async () => {
  akamon = await startAkamon();
});
afterAll(() => akamon.close());

const admin = (path: string, method: string, body?: unknown) => adminApi(akamon, method, path, body);

const row = (commonId: string) => akamon.deps.accounts.findByCommonId(commonId);

describe('account fields in the admin API', () => {
  test('created with every field, normalised, shown back, and stored', async () => {
    const commonId = newCommonId();
    const created = await admin('/accounts', 'POST', {
      commonId,
      name: '山田 花子',
      affiliation: 'student',
      email: 'hanako@example.ac.jp',
      emailVerified: false,
      familyName: 'ＹＡＭＡＤＡ',
      givenName: 'Hanako',
      familyNameJa: '山田',
      givenNameJa: '花子',
      familyNameKana: 'やまだ',
      givenNameKana: 'ﾊﾅｺ',
      department: 'ENG/Mech',
      entitlements: ['urn:mace:dir:entitlement:common-lib-terms', 'urn:mace:dir:entitlement:common-lib-terms'],
    });
    expect(created.status).toBe(201);
    const expected = {
      emailVerified: false,
      familyName: 'YAMADA',
      givenName: 'Hanako',
      familyNameJa: '山田',
      givenNameJa: '花子',
      familyNameKana: 'ヤマダ',
      givenNameKana: 'ハナコ',
      department: 'eng/mech',
      entitlements: ['urn:mace:dir:entitlement:common-lib-terms'],
    };
    expect(created.body.account).toMatchObject(expected);
    expect((await admin(`/accounts/${commonId}`, 'GET')).body).toMatchObject(expected);
    expect(await row(commonId)).toMatchObject({ department: 'eng/mech', family_name_kana: 'ヤマダ', email_verified: false, entitlements: ['urn:mace:dir:entitlement:common-lib-terms'] });
  });

  test('an account created without them has the defaults: no parts, no department, a verified address', async () => {
    const account = await akamon.createAccount();
    const shown = (await admin(`/accounts/${account.commonId}`, 'GET')).body;
    expect(shown).toMatchObject({ emailVerified: true, familyName: null, familyNameKana: null, department: null, entitlements: [] });
  });

  test('PATCH changes the fields named, clears with null, and leaves the others', async () => {
    const account = await akamon.createAccount({ profile: { department: 'sci', familyName: 'Sato', entitlements: ['urn:x:a'] } });
    const patched = await admin(`/accounts/${account.commonId}`, 'PATCH', { department: 'med/nurse', familyName: null, requireMfa: true });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ department: 'med/nurse', familyName: null, entitlements: ['urn:x:a'], mfaRequired: true });
    const audit = await akamon.deps.audit.list({ accountId: account.id, limit: 5 });
    expect(audit.map((e) => e.action)).toEqual(expect.arrayContaining(['account.updated', 'mfa.requirement_changed']));
    expect(audit.find((e) => e.action === 'account.updated')?.details).toEqual({ fields: ['department', 'familyName'] });
  });

  test('bad input answers 400 with a clear message, and nothing of the request is written', async () => {
    const account = await akamon.createAccount({ profile: { department: 'eng' } });
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ department: 'eng', familyNameKana: '山田' }, 'invalid_reading', /katakana/],
      [{ department: 'eng mech' }, 'invalid_department', /levels separated by "\/"/],
      [{ familyName: '山田' }, 'invalid_name', /Latin script/],
      [{ entitlements: ['library access'] }, 'invalid_entitlement', /absolute URI/],
      [{ emailVerified: 'no', department: 'med' }, 'invalid_request', /emailVerified must be true or false/],
      [{ departement: 'med' }, 'invalid_request', /unknown field departement/],
      [{ department: 'med', requireMfa: 'yes' }, 'invalid_request', /requireMfa must be true or false/],
      [{}, 'invalid_request', /say what to change/],
    ];
    for (const [body, error, message] of cases) {
      const answer = await admin(`/accounts/${account.commonId}`, 'PATCH', body);
      expect(answer.status).toBe(400);
      expect(answer.body.error).toBe(error);
      expect(answer.body.error_description).toMatch(message);
    }
    expect(await row(account.commonId)).toMatchObject({ department: 'eng', family_name_kana: null, email_verified: true, mfa_required: false });

    const misspelt = await admin('/accounts', 'POST', { commonId: newCommonId(), name: 'X', affiliation: 'student', familyname: 'Y' });
    expect(misspelt).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(misspelt.body.error_description).toMatch(/unknown field familyname/);
  });

  test('the list takes a department and everything below it', async () => {
    const unit = `u${Date.now() % 100000}`;
    const inside = await akamon.createAccount({ profile: { department: unit } });
    const below = await akamon.createAccount({ profile: { department: `${unit}/lab_1` } });
    await akamon.createAccount({ profile: { department: `${unit}x` } });
    await akamon.createAccount({ profile: { department: `${unit}_x` } });
    const listed = await admin(`/accounts?department=${unit.toUpperCase()}&limit=1000`, 'GET');
    expect(listed.body.accounts.map((a: { commonId: string }) => a.commonId).sort()).toEqual([inside.commonId, below.commonId].sort());
    expect((await admin('/accounts?department=a%20b', 'GET')).status).toBe(400);
  });

  test('a client allows departments through the settings table; "any" is null', async () => {
    const created = await admin('/clients', 'POST', { name: 'Lab Portal', redirectUris: ['https://lab.example.ac.jp/cb'], allowedDepartments: ['ENG', 'eng', 'sci/phys'] });
    expect(created.status).toBe(201);
    expect(created.body.client.allowedDepartments).toEqual(['eng', 'sci/phys']);
    const cleared = await admin(`/clients/${created.body.clientId}`, 'PATCH', { allowedDepartments: null });
    expect(cleared.body.client.allowedDepartments).toBeNull();
    const refused = await admin(`/clients/${created.body.clientId}`, 'PATCH', { allowedDepartments: ['eng//x'] });
    expect(refused).toMatchObject({ status: 400, body: { error: 'invalid_department' } });
    expect((await admin(`/clients/${created.body.clientId}`, 'PATCH', { allowedDepartments: [] })).status).toBe(400);
  });
});

describe('the department rule at sign-in', () => {
  test('the person outside the departments sees 53003 with the reason in English and Japanese; the sign-in log keeps the rule', async () => {
    const client = await akamon.createClient({ name: 'Engineering Portal', allowedDepartments: ['eng'], redirectUris: ['http://127.0.0.1:9/eng-portal'] });
    const account = await akamon.createReadyAccount({ profile: { department: 'med' } });
    const browser = new Browser(akamon.url);
    const denied = await enterCredentials(browser, (await startAuthorization(browser, akamon, client)).page, account.commonId, account.password);
    expect(denied.status).toBe(403);
    expect(denied.html).toContain('53003');
    expect(denied.html).toContain('the department your account belongs to is not among them');
    const [logged] = await akamon.deps.signinLog.list({ accountId: account.id, limit: 1 });
    expect(logged).toMatchObject({ result: 'failure', reason: 'access_denied.department_not_allowed', client_id: client.clientId });
    const japanese = await browser.visit((await startAuthorization(browser, akamon, client, { ui_locales: 'ja' })).page.url);
    expect(japanese.html).toContain('所属部局は対象に含まれていません');
  });
});
