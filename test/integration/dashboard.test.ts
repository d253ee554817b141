import type { SigninReason } from '../../src/audit/signin-reasons.ts';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { parse } from 'csv-parse/sync';
import { sql } from 'kysely';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import type { Browser } from '../support/browser.ts';
import { consoleOperator } from '../support/console-operator.ts';
import { DashboardService, FIGURES, type DashboardFigures } from '../../src/dashboard/dashboard.service.ts';
import { DashboardStore } from '../../src/dashboard/dashboard.store.ts';
import { figureTable, toCsv } from '../../src/dashboard/dashboard-table.ts';
import type { Principal } from '../../src/operator/permissions.ts';

// The ICT office's dashboard (issue 18 point 4): every figure is checked against a count made here
// with plain SQL over seeded accounts, factors, education, sign-in log rows and revocations.

const admin: Principal = { actor: 'operator:test', role: 'admin', scope: null };
const auditor: Principal = { actor: 'console:0000000001', role: 'auditor', scope: null };

let akamon: RunningAkamon;
let figures: DashboardFigures;
const DAY = 86_400_000;

/** The first value of the first row of a plain SQL query, as a number. */
async function count(query: ReturnType<typeof sql>): Promise<number> {
  const { rows } = await query.execute(akamon.deps.database.db);
  return Number(Object.values(rows[0] as Record<string, unknown>)[0]);
}

beforeAll(async () => {
  akamon = await startAkamon();
  const { deps } = akamon;
  const people = [
    { affiliation: 'student', department: 'eng/mech', factors: ['totp'] },
    { affiliation: 'student', department: 'eng/civil', factors: ['webauthn', 'totp'] },
    { affiliation: 'student', department: 'eng', factors: [] },
    { affiliation: 'student', department: 'sci/phys', factors: ['phone'] },
    { affiliation: 'student', department: null, factors: [] },
    { affiliation: 'faculty', department: 'sci', factors: ['hardware'] },
    { affiliation: 'faculty', department: 'eng/mech', factors: ['webauthn'] },
    { affiliation: 'staff', department: 'adm/personnel', factors: [] },
    { affiliation: 'staff', department: null, factors: ['phone', 'hardware'] },
    { affiliation: 'guest', department: null, factors: [] },
  ] as const;
  const ids: string[] = [];
  let serial = 0;
  for (const person of people) {
    const { id } = await akamon.createAccount({ affiliation: person.affiliation, profile: person.department ? { department: person.department } : {} });
    ids.push(id);
    for (const kind of person.factors) {
      if (kind === 'hardware') {
        serial += 1;
        await deps.tokens.add({ serial: `TK-${serial}`, secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', digits: 6, period: 30 });
        await deps.tokens.assign(`TK-${serial}`, id);
      } else {
        await deps.mfaStore.insert({ accountId: id, kind, label: kind, secretEnc: kind === 'totp' ? 'x' : null });
      }
    }
  }
  // Not active, so in no figure of active accounts, though they have factors and education.
  const suspended = await akamon.createAccount({ affiliation: 'student', profile: { department: 'eng' } });
  await deps.mfaStore.insert({ accountId: suspended.id, kind: 'totp', label: 'app' });
  await deps.accountService.setStatus(suspended.commonId, 'suspended');
  const revoked = await akamon.createAccount({ affiliation: 'faculty' });
  await deps.mfaStore.insert({ accountId: revoked.id, kind: 'webauthn', label: 'key' });
  await deps.accountService.setStatus(revoked.commonId, 'revoked');

  // This year's education for three active accounts and the suspended one; last year's for another.
  const year = deps.education.currentYear();
  for (const id of [ids[0]!, ids[3]!, ids[5]!, suspended.id]) await deps.education.record(id, year);
  await deps.education.record(ids[1]!, year - 1, `${year}-01-15`);

  // Sign-in failures and access-rule refusals, now and (not counted) 40 days ago.
  const lms = await akamon.createClient({ name: 'LMS' });
  const library = await akamon.createClient({ name: 'Library' });
  const event = (accountId: string | null, clientId: string | null, reason: SigninReason, result: 'failure' | 'success' = 'failure') =>
    deps.signinLog.record({ accountId, clientId, ip: '192.0.2.1', userAgent: 'test', result, reason });
  await event(ids[0]!, lms.clientId, 'wrong_password');
  await event(ids[0]!, lms.clientId, 'wrong_password');
  await event(null, lms.clientId, 'unknown_account');
  await event(ids[2]!, lms.clientId, 'access_denied.affiliation_not_allowed');
  await event(ids[2]!, lms.clientId, 'access_denied.affiliation_not_allowed');
  await event(ids[4]!, lms.clientId, 'access_denied.affiliation_not_allowed');
  await event(ids[7]!, library.clientId, 'access_denied.education_required');
  await event(ids[7]!, library.clientId, 'access_denied.department_not_allowed');
  await event(ids[0]!, lms.clientId, 'password', 'success');
  await event(ids[9]!, library.clientId, 'access_denied.account_denied');
  await event(ids[9]!, library.clientId, 'wrong_password');
  await sql`update signin_event set occurred_at = now() - interval '40 days' where account_id = ${ids[9]!}`.execute(deps.database.db);

  // Revocations: two next month, one in five months, one beyond a year (not counted).
  const now = Date.now();
  await deps.revocations.schedule(people.length ? (await deps.accounts.findById(ids[5]!))!.common_id : '', new Date(now + 35 * DAY), 'retirement');
  await deps.revocations.schedule((await deps.accounts.findById(ids[6]!))!.common_id, new Date(now + 36 * DAY), 'retirement');
  await deps.revocations.schedule((await deps.accounts.findById(ids[7]!))!.common_id, new Date(now + 150 * DAY), 'contract_end');
  await deps.revocations.schedule((await deps.accounts.findById(ids[8]!))!.common_id, new Date(now + 400 * DAY), 'contract_end');

  figures = await deps.dashboard.figures(admin);
});
afterAll(() => akamon?.close());

describe('figures against counts made in the database', () => {
  test('MFA adoption: overall, by affiliation and by top-level department (no department as "")', async () => {
    const withMfa = sql`exists (select 1 from mfa_factor f where f.account_id = a.id)`;
    expect(figures.adoption.overall).toEqual({ value: '', active: 10, count: 6, share: 0.6 });
    expect(figures.adoption.overall.active).toBe(await count(sql`select count(*) from account a where a.status = 'active'`));
    expect(figures.adoption.overall.count).toBe(await count(sql`select count(*) from account a where a.status = 'active' and ${withMfa}`));
    for (const affiliation of ['student', 'faculty', 'staff', 'guest']) {
      const row = figures.adoption.byAffiliation.find((g) => g.value === affiliation)!;
      expect(row.active).toBe(await count(sql`select count(*) from account a where a.status = 'active' and a.affiliation = ${affiliation}`));
      expect(row.count).toBe(await count(sql`select count(*) from account a where a.status = 'active' and a.affiliation = ${affiliation} and ${withMfa}`));
    }
    expect(figures.adoption.byDepartment.map((g) => g.value).sort()).toEqual(['', 'adm', 'eng', 'sci']);
    for (const unit of ['eng', 'sci', 'adm']) {
      const row = figures.adoption.byDepartment.find((g) => g.value === unit)!;
      const inUnit = sql`(a.department = ${unit} or a.department like ${`${unit}/%`})`;
      expect(row.active).toBe(await count(sql`select count(*) from account a where a.status = 'active' and ${inUnit}`));
      expect(row.count).toBe(await count(sql`select count(*) from account a where a.status = 'active' and ${inUnit} and ${withMfa}`));
    }
    const none = figures.adoption.byDepartment.find((g) => g.value === '')!;
    expect(none).toEqual({ value: '', active: 3, count: 1, share: 0.3333 });
    expect(none.active).toBe(await count(sql`select count(*) from account a where a.status = 'active' and a.department is null`));
  });

  test('methods in use: active accounts per kind of factor, a lent token as hardware_token', async () => {
    const perKind = async (kind: string) => count(sql`select count(distinct f.account_id) from mfa_factor f join account a on a.id = f.account_id where a.status = 'active' and f.kind = ${kind}`);
    expect(figures.methods).toEqual([
      { method: 'authenticator_app', accounts: await perKind('totp') },
      { method: 'passkey', accounts: await perKind('webauthn') },
      { method: 'phone', accounts: await perKind('phone') },
      { method: 'hardware_token', accounts: await perKind('token') },
    ]);
    expect(figures.methods.map((m) => m.accounts)).toEqual([2, 2, 2, 2]);
  });

  test('education: active accounts that passed this academic year, overall and by affiliation', async () => {
    const year = akamon.deps.education.currentYear();
    expect(figures.education.academicYear).toBe(year);
    const passed = sql`exists (select 1 from security_education e where e.account_id = a.id and e.academic_year = ${year})`;
    expect(figures.education.overall.count).toBe(3);
    expect(figures.education.overall.count).toBe(await count(sql`select count(*) from account a where a.status = 'active' and ${passed}`));
    for (const row of figures.education.byAffiliation) {
      expect(row.count).toBe(await count(sql`select count(*) from account a where a.status = 'active' and a.affiliation = ${row.value} and ${passed}`));
    }
    expect(figures.education.byAffiliation.find((g) => g.value === 'student')).toMatchObject({ active: 5, count: 2, share: 0.4 });
  });

  test('access-rule refusals of the last 30 days: accounts and attempts per client and rule', async () => {
    const { rows } = await sql<{ client_id: string; reason: string; accounts: string; attempts: string }>`
      select client_id, reason, count(distinct account_id) as accounts, count(*) as attempts from signin_event
       where reason like 'access_denied.%' and occurred_at > now() - interval '30 days' group by client_id, reason`.execute(akamon.deps.database.db);
    expect(figures.access_denials).toHaveLength(rows.length);
    for (const row of rows) {
      expect(figures.access_denials).toContainEqual(
        expect.objectContaining({ clientId: row.client_id, rule: row.reason.replace('access_denied.', ''), accounts: Number(row.accounts), attempts: Number(row.attempts) }),
      );
    }
    expect(figures.access_denials[0]).toMatchObject({ clientName: 'LMS', rule: 'affiliation_not_allowed', accounts: 2, attempts: 3 });
    expect(figures.access_denials.map((d) => d.rule)).not.toContain('account_denied');
  });

  test('sign-in failures of the last 30 days by reason', async () => {
    const { rows } = await sql<{ reason: string; n: string }>`
      select reason, count(*) as n from signin_event where result = 'failure' and occurred_at > now() - interval '30 days' group by reason`.execute(akamon.deps.database.db);
    expect(Object.fromEntries(figures.signin_failures.map((f) => [f.reason, f.count]))).toEqual(Object.fromEntries(rows.map((r) => [r.reason, Number(r.n)])));
    expect(figures.signin_failures.find((f) => f.reason === 'wrong_password')?.count).toBe(2);
  });

  test('upcoming revocations by month of the university time zone, this month and the next eleven', async () => {
    expect(figures.revocations).toHaveLength(12);
    const { rows } = await sql<{ month: string; n: string }>`
      select to_char(revoke_at at time zone 'Asia/Tokyo', 'YYYY-MM') as month, count(*) as n from account
       where revoke_at is not null and status <> 'revoked' group by 1`.execute(akamon.deps.database.db);
    const inWindow = rows.filter((r) => figures.revocations.some((m) => m.month === r.month));
    expect(figures.revocations.filter((m) => m.accounts > 0)).toEqual(inWindow.map((r) => ({ month: r.month, accounts: Number(r.n) })).sort((a, b) => a.month.localeCompare(b.month)));
    expect(figures.revocations.reduce((sum, m) => sum + m.accounts, 0)).toBe(3);
  });

  test('one figure alone is the same as in the whole set', async () => {
    for (const figure of FIGURES) expect(await akamon.deps.dashboard.figure(auditor, figure)).toEqual(figures[figure]);
  });
});

describe('daily snapshot', () => {
  const snapshotRows = async (day: string) =>
    (
      await sql<{ dimension: string; value: string; active_accounts: number; mfa_accounts: number }>`
        select dimension, value, active_accounts, mfa_accounts from mfa_snapshot where day = ${day} order by dimension, value`.execute(akamon.deps.database.db)
    ).rows;
  const today = () => new Intl.DateTimeFormat('sv-SE', { timeZone: 'Asia/Tokyo' }).format(new Date());

  test('run twice, and from two nodes at once, it leaves one row per dimension value for the day', async () => {
    const second = await startAkamon({ share: akamon, env: { AKAMON_ISSUER: akamon.url } });
    try {
      const written = await Promise.all([akamon.deps.dashboard.takeSnapshot(), second.deps.dashboard.takeSnapshot(), akamon.deps.dashboard.takeSnapshot()]);
      expect(await akamon.deps.dashboard.takeSnapshot()).toBe(0);
      const rows = await snapshotRows(today());
      // all + four affiliations + four departments (the "" one included).
      expect(rows).toHaveLength(9);
      expect(written.reduce((a, b) => a + b, 0)).toBe(9);
      expect(rows.find((r) => r.dimension === 'all')).toMatchObject({ active_accounts: 10, mfa_accounts: 6 });
      expect(rows.find((r) => r.dimension === 'department' && r.value === 'eng')).toMatchObject({ active_accounts: 4, mfa_accounts: 3 });
    } finally {
      await second.close();
    }
    const history = await akamon.deps.dashboard.figure(admin, 'adoption_history');
    expect(history.filter((p) => p.day === today())).toHaveLength(9);
    expect(history.find((p) => p.day === today() && p.dimension === 'all')).toMatchObject({ active: 10, count: 6, share: 0.6 });
  });

  test('the next day of the university time zone is a new snapshot; the chart keeps both days', async () => {
    const tomorrow = { now: () => new Date(Date.now() + DAY) };
    const later = new DashboardService({ store: new DashboardStore(akamon.deps.database.db), education: akamon.deps.education, clock: tomorrow, timeZone: 'Asia/Tokyo' });
    await akamon.deps.dashboard.takeSnapshot();
    expect(await later.takeSnapshot()).toBe(9);
    expect(await later.takeSnapshot()).toBe(0);
    const days = new Set((await later.figure(admin, 'adoption_history')).map((p) => p.day));
    expect(days.size).toBe(2);
    expect(await count(sql`select count(*) from mfa_snapshot`)).toBe(18);
  });
});

describe('CSV', () => {
  test('each figure round-trips through CSV: BOM, header row, the same cells', async () => {
    // Counted again: the snapshots above are in the history now.
    const now = await akamon.deps.dashboard.figures(admin);
    for (const figure of FIGURES) {
      const table = figureTable(figure, now[figure]);
      const csv = toCsv(table);
      expect(csv.startsWith('\uFEFF')).toBe(true);
      const parsed = parse(csv, { bom: true }) as string[][];
      expect(parsed[0]).toEqual(table.columns);
      expect(parsed.slice(1)).toEqual(table.rows.map((row) => row.map((cell) => (cell === null ? '' : String(cell)))));
      expect(parsed.length).toBeGreaterThan(1);
    }
  });

  test('quotes, commas, line breaks and formula-like text stay data', () => {
    const csv = toCsv({
      columns: ['client_name', 'n'],
      rows: [
        ['図書館, "本館"\n2F', 1],
        ['=HYPERLINK("x")', 2],
      ],
    });
    expect(parse(csv, { bom: true })).toEqual([
      ['client_name', 'n'],
      ['図書館, "本館"\n2F', '1'],
      [`'=HYPERLINK("x")`, '2'],
    ]);
  });
});

describe('permission', () => {
  test('office and help-desk operators are refused with forbidden; admin and auditor see the figures', async () => {
    const office: Principal = { actor: 'console:0000000002', role: 'office', scope: { departments: ['eng'], affiliations: [] } };
    const helpdesk: Principal = { actor: 'operator:desk', role: 'helpdesk', scope: null };
    for (const principal of [office, helpdesk]) {
      await expect(akamon.deps.dashboard.figures(principal)).rejects.toMatchObject({ code: 'forbidden' });
      await expect(akamon.deps.dashboard.figure(principal, 'methods')).rejects.toMatchObject({ code: 'forbidden' });
    }
    expect((await akamon.deps.dashboard.figures(auditor)).adoption.overall.active).toBe(10);
  });

  test('a scoped auditor is refused: the figures count every account, and no scope narrows them', async () => {
    const scoped: Principal = { actor: 'operator:faculty-audit', role: 'auditor', scope: { departments: ['eng'], affiliations: [] } };
    await expect(akamon.deps.dashboard.figures(scoped)).rejects.toMatchObject({ code: 'forbidden', message: expect.stringContaining('university-wide') });
    for (const figure of FIGURES) await expect(akamon.deps.dashboard.figure(scoped, figure)).rejects.toMatchObject({ code: 'forbidden' });
  });
});

describe('the console page and its CSV over HTTP', () => {
  const csvBytes = async (browser: Browser, figure: string) => {
    const response = await browser.request(`/console/dashboard/${figure}.csv`);
    return { response, bytes: new Uint8Array(await response.arrayBuffer()) };
  };

  test('an administrator sees every figure as an SVG chart with its table, in English and Japanese', async () => {
    const { browser, landing } = await consoleOperator(akamon, 'admin', null, '/console/dashboard');
    expect(landing.url).toBe(`${akamon.url}/console/dashboard`);
    expect(landing.status).toBe(200);
    expect(landing.html).toContain('MFA and access dashboard');
    // Charts: images with a title and a label; the numbers in folded tables; no script.
    expect(landing.html.match(/<svg class="chart"[^>]* role="img" aria-label="[^"]+"/g)?.length).toBeGreaterThanOrEqual(7);
    expect(landing.html).toContain('<title>By department (faculty or top-level unit)</title>');
    expect(landing.html).toMatch(/<details class="dashboard-numbers">/);
    expect(landing.html).not.toContain('<script');
    for (const figure of FIGURES) expect(landing.html).toContain(`href="/console/dashboard/${figure}.csv"`);
    // The figures of the page are the service's: the overall share and a department row.
    const now = await akamon.deps.dashboard.figures(admin);
    expect(landing.html).toContain(`(${now.adoption.overall.count} of ${now.adoption.overall.active})`);
    expect(landing.html).toContain('No department');
    browser.acceptLanguage = 'ja';
    const ja = await browser.visit('/console/dashboard');
    expect(ja.status).toBe(200);
    expect(ja.html).toContain('MFA・アクセス状況ダッシュボード');
    expect(ja.html).toContain('所属なし');
  });

  test('each figure downloads as a UTF-8 CSV with a BOM, as an attachment, with the service figures', async () => {
    const { browser } = await consoleOperator(akamon, 'auditor', null, '/console/dashboard');
    for (const figure of FIGURES) {
      const { response, bytes } = await csvBytes(browser, figure);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8');
      expect(response.headers.get('content-disposition')).toMatch(new RegExp(`^attachment; filename="akamon-${figure.replaceAll('_', '-')}-\\d{4}-\\d{2}-\\d{2}\\.csv"$`));
      expect([...bytes.slice(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
      const parsed = parse(new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes), { bom: true }) as string[][];
      const table = figureTable(figure, await akamon.deps.dashboard.figure(admin, figure));
      expect(parsed[0]).toEqual(table.columns);
      expect(parsed.slice(1)).toEqual(table.rows.map((row) => row.map((cell) => (cell === null ? '' : String(cell)))));
    }
    const unknown = await browser.request('/console/dashboard/passwords.csv');
    expect(unknown.status).toBe(404);
  });

  test('an office operator and a help-desk reader are refused the page and every CSV (403)', async () => {
    for (const [role, scope] of [
      ['office', { departments: ['eng'], affiliations: [] }],
      ['helpdesk', null],
    ] as const) {
      const { browser } = await consoleOperator(akamon, role, scope);
      const page = await browser.visit('/console/dashboard');
      expect(page.status).toBe(403);
      expect(page.html).not.toContain('<svg class="chart"');
      for (const figure of FIGURES) {
        const { response, bytes } = await csvBytes(browser, figure);
        expect(response.status).toBe(403);
        expect(response.headers.get('content-type')).toMatch(/^text\/html/);
        expect(response.headers.get('content-disposition')).toBeNull();
        expect(bytes[0]).not.toBe(0xef);
      }
    }
  });
});

describe('admin API', () => {
  test('GET /admin/api/dashboard answers the figures to admin and auditor tokens, 403 to office and help desk', async () => {
    const call = async (token: string) => {
      const response = await fetch(`${akamon.url}/admin/api/dashboard`, { headers: { authorization: `Bearer ${token}` } });
      return { status: response.status, body: (await response.json()) as Record<string, any> };
    };
    const asAdmin = await call(akamon.operatorToken);
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.body).toEqual(JSON.parse(JSON.stringify({ ...(await akamon.deps.dashboard.figures(admin)), countedAt: asAdmin.body.countedAt })));
    expect(Object.keys(asAdmin.body)).toEqual(expect.arrayContaining([...FIGURES]));
    const token = (role: 'auditor' | 'office' | 'helpdesk') =>
      akamon.deps.operators.create({ name: `dash-${role}`, role, scope: role === 'office' ? { departments: ['eng'], affiliations: [] } : null, expiresAt: null, createdBy: 'test' });
    expect((await call(await token('auditor'))).status).toBe(200);
    for (const role of ['office', 'helpdesk'] as const) {
      const refused = await call(await token(role));
      expect(refused.status).toBe(403);
      expect(refused.body.error).toBe('forbidden');
      expect(refused.body).not.toHaveProperty('adoption');
    }
  });
});

describe('counting the accounts', () => {
  test('one count serves for a minute (page, CSVs, other operators); after that a new account shows', async () => {
    const clock = { offset: 0, now: () => new Date(Date.now() + clock.offset) };
    const service = new DashboardService({ store: new DashboardStore(akamon.deps.database.db), education: akamon.deps.education, clock, timeZone: 'Asia/Tokyo' });
    const before = (await service.figures(admin)).adoption.overall.active;
    await akamon.createAccount({ affiliation: 'staff' });
    expect((await service.figure(auditor, 'adoption')).overall.active).toBe(before);
    clock.offset = 61_000;
    expect((await service.figure(auditor, 'adoption')).overall.active).toBe(before + 1);
    expect(before + 1).toBe(await count(sql`select count(*) from account where status = 'active'`));
  });
});
