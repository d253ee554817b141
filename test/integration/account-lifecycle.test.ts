import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql } from 'kysely';
import { ACCOUNT_RULE, ADDRESS_RULE } from '../../src/throttle/login-throttle.ts';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { codeFrom, enterCredentials, redeem, signIn, startAuthorization, tokenRequest } from '../support/flows.ts';

let akamon: RunningAkamon;
let client: Awaited<ReturnType<RunningAkamon['createClient']>>;

beforeAll(async () => {
  akamon = await startAkamon();
  client = await akamon.createClient({ name: 'Student Portal' });
});
afterAll(() => akamon.close());

describe('first sign-in with an initial password', () => {
  test('asks for a new password, names every broken rule, warns about 32-character systems, then continues', async () => {
    await akamon.createClient({ name: 'Printing Service', maxPasswordLength: 32, redirectUris: ['http://127.0.0.1:9/print'] });
    const account = await akamon.createAccount();
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, client);
    const change = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(change.html).toContain('Choose a new password');
    expect(change.html).toContain('Printing Service');

    const weak = await browser.submit(change, /\/change$/, { current: account.password, new: `password ${account.commonId}`, confirm: `password ${account.commonId}` });
    expect(weak.status).toBe(400);
    expect(weak.html).toContain('It contains a space');
    expect(weak.html).toContain('It must not contain your Common ID.');
    expect(weak.html).toContain('It needs at least 3 kinds of characters');

    const long = 'Correct-Horse-Battery-Staple-Tokyo-2026';
    const warned = await browser.submit(weak, /\/change$/, { current: account.password, new: long, confirm: long });
    expect(warned.status).toBe(400);
    expect(warned.html).toContain(`${[...long].length} characters long`);
    expect(warned.html).toMatch(/name="acknowledge_length"/);

    const mismatch = await browser.submit(warned, /\/change$/, { current: account.password, new: long, confirm: `${long}x`, acknowledge_length: 'yes' });
    expect(mismatch.html).toContain('are different');

    const done = await browser.submit(mismatch, /\/change$/, { current: account.password, new: long, confirm: long, acknowledge_length: 'yes' });
    const tokens = await redeem(akamon, client, codeFrom(done), started.verifier);
    expect(tokens.status).toBe(200);

    const row = await akamon.deps.accounts.findById(account.id);
    expect(row!.must_change_password).toBe(false);
    const [audit] = await akamon.deps.audit.list({ accountId: account.id, limit: 1 });
    expect(audit).toMatchObject({ actor: 'self', action: 'password.changed' });
    // The old password stops working at once and the new one works, on a fresh browser.
    const oldBrowser = new Browser(akamon.url);
    const old = await startAuthorization(oldBrowser, akamon, client);
    const refused = await enterCredentials(oldBrowser, old.page, account.commonId, account.password);
    expect(refused.status).toBe(401);
    const fresh = await signIn(new Browser(akamon.url), akamon, client, { commonId: account.commonId, password: long });
    expect(fresh.code).toBeTruthy();
  });

  test('prompt=none cannot skip the password change', async () => {
    const account = await akamon.createAccount();
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, client);
    const change = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(change.html).toContain('Choose a new password');
    const silent = await startAuthorization(browser, akamon, client, { prompt: 'none' });
    expect(new URL(silent.page.url).searchParams.get('error')).toBe('interaction_required');
  });
});

describe('suspended and revoked accounts', () => {
  test('the right password for a suspended account shows a clear page; the client gets access_denied', async () => {
    const account = await akamon.createReadyAccount();
    await akamon.deps.accountService.setStatus(account.commonId, 'suspended');
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, client);
    const page = await enterCredentials(browser, started.page, account.commonId, account.password);
    expect(page.status).toBe(403);
    expect(page.html).toContain('This account is suspended');
    const back = await browser.submit(page, /\/abort$/, {});
    expect(new URL(back.url).searchParams.get('error')).toBe('access_denied');
  });

  test('revocation ends sessions and refresh tokens at once', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const result = await signIn(browser, akamon, client, account);
    const tokens = await redeem(akamon, client, result.code!, result.verifier);
    await akamon.deps.accountService.setStatus(account.commonId, 'revoked');
    const refresh = await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token });
    expect(refresh.body.error).toBe('invalid_grant');
    const userinfo = await fetch(`${akamon.url}/me`, { headers: { authorization: `Bearer ${tokens.body.access_token}` } });
    expect(userinfo.status).toBe(401);
    const silent = await startAuthorization(browser, akamon, client, { prompt: 'none' });
    expect(new URL(silent.page.url).searchParams.get('error')).toBe('login_required');
  });

  test('an account suspended while its session lives is stopped at the next sign-in (access_denied with prompt=none)', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    await signIn(browser, akamon, client, account);
    // Suspend without touching the sessions, as a direct database change would.
    await akamon.deps.database.db.updateTable('account').set({ status: 'suspended' }).where('id', '=', account.id).execute();
    const silent = await startAuthorization(browser, akamon, client, { prompt: 'none' });
    expect(new URL(silent.page.url).searchParams.get('error')).toBe('access_denied');
    const shown = await startAuthorization(browser, akamon, client);
    expect(shown.page.status).toBe(403);
    expect(shown.page.html).toContain('This account is suspended');
    expect(shown.page.html).toContain('53003');
    const log = await akamon.deps.signinLog.list({ accountId: account.id, limit: 1 });
    expect(log[0]).toMatchObject({ result: 'failure', reason: 'access_denied.status_not_allowed' });
  });
});

describe('brute-force protection', () => {
  test('growing delays per account, shown to the person, and the right password is refused while locked', async () => {
    const account = await akamon.createReadyAccount();
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 6; i += 1) {
      const browser = new Browser(akamon.url);
      const { page } = await startAuthorization(browser, akamon, client);
      last = await enterCredentials(browser, page, account.commonId, `Wrong-password-${i}`);
      statuses.push(last.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    expect(last!.status).toBe(429);
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(last!.html).toMatch(/Wait \d+ minute/);
    const browser = new Browser(akamon.url);
    const { page } = await startAuthorization(browser, akamon, client);
    const locked = await enterCredentials(browser, page, account.commonId, account.password);
    expect(locked.status).toBe(429);
    const row = await akamon.deps.database.db.selectFrom('throttle').selectAll().where('key', '=', `account:${account.commonId}`).executeTakeFirstOrThrow();
    expect(row.failures).toBe(5);
    expect(new Date(row.locked_until!).getTime()).toBeGreaterThan(Date.now());
  });

  test('parallel guesses cannot slip past the lock: of 12 at once, only the free attempts are checked', async () => {
    const account = await akamon.createReadyAccount();
    const pages = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const browser = new Browser(akamon.url);
        const { page } = await startAuthorization(browser, akamon, client);
        const passwordPage = await browser.submit(page, /\/identifier$/, { identifier: account.commonId });
        return { browser, passwordPage, i };
      }),
    );
    const results = await Promise.all(pages.map(({ browser, passwordPage, i }) => browser.submit(passwordPage, /\/password$/, { password: `Wrong-password-${i}` })));
    // All twelve answers in one assertion, so that a failure shows what the others got.
    expect(results.map((r) => r.status).sort()).toEqual([...Array(5).fill(401), ...Array(7).fill(429)]);
    const log = await akamon.deps.signinLog.list({ accountId: account.id, limit: 20 });
    expect(log.filter((e) => e.reason === 'wrong_password')).toHaveLength(5);
  });

  test('an unknown Common ID is throttled exactly like a real one (no enumeration through the lock)', async () => {
    for (let i = 0; i < 5; i += 1) {
      const browser = new Browser(akamon.url);
      const { page } = await startAuthorization(browser, akamon, client);
      await enterCredentials(browser, page, '8888888888', 'Wrong-password-1');
    }
    const browser = new Browser(akamon.url);
    const { page } = await startAuthorization(browser, akamon, client);
    const locked = await enterCredentials(browser, page, '8888888888', 'Wrong-password-1');
    expect(locked.status).toBe(429);
  });

  test('at 100 consecutive failures the account stays locked until an operator unlocks it', async () => {
    const account = await akamon.createReadyAccount();
    await akamon.deps.database.db
      .insertInto('throttle')
      .values({ key: `account:${account.commonId}`, failures: 100, last_failure_at: new Date(), locked_until: null })
      .execute();
    const browser = new Browser(akamon.url);
    const { page } = await startAuthorization(browser, akamon, client);
    const blocked = await enterCredentials(browser, page, account.commonId, account.password);
    expect(blocked.html).toContain('locked after too many failed attempts');
    await akamon.deps.accountService.unlock(account.commonId);
    const ok = await signIn(new Browser(akamon.url), akamon, client, account);
    expect(ok.code).toBeTruthy();
  });

  test('correct sign-ins from an address with many failures are not locked out by their own attempts', async () => {
    const { throttle } = akamon.deps;
    const address = [{ key: 'address:192.0.2.200', rule: ADDRESS_RULE }];
    for (let i = 0; i < ADDRESS_RULE.free - 1; i += 1) {
      expect((await throttle.reserve(address)).waitSeconds).toBe(0);
      await throttle.failed(address);
    }
    for (let i = 0; i < 20; i += 1) {
      expect(await throttle.reserve(address)).toEqual({ waitSeconds: 0, blocked: false });
      await throttle.succeeded([{ key: 'account:0000000000', rule: ACCOUNT_RULE }, ...address]);
    }
    const row = await akamon.deps.database.db.selectFrom('throttle').selectAll().where('key', '=', 'address:192.0.2.200').executeTakeFirstOrThrow();
    expect(row).toMatchObject({ failures: ADDRESS_RULE.free - 1, pending: 0, locked_until: null });
  });

  test('a success clears the per-account count', async () => {
    const account = await akamon.createReadyAccount();
    for (let i = 0; i < 3; i += 1) {
      const browser = new Browser(akamon.url);
      const { page } = await startAuthorization(browser, akamon, client);
      await enterCredentials(browser, page, account.commonId, 'Wrong-password-1');
    }
    await signIn(new Browser(akamon.url), akamon, client, account);
    const rows = await sql<{ n: number }>`select count(*)::int as n from throttle where key = ${`account:${account.commonId}`}`.execute(akamon.deps.database.db);
    expect(rows.rows[0].n).toBe(0);
  });
});
