import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { enterCredentials, tokenRequest } from '../support/flows.ts';
import { Browser } from '../support/browser.ts';
import { generate } from 'otplib';
import { MAX_APP_PASSWORDS } from '../../src/account/app-password.service.ts';

let akamon: RunningAkamon;
let mail: Awaited<ReturnType<RunningAkamon['createClient']>>;
let modern: Awaited<ReturnType<RunningAkamon['createClient']>>;

beforeAll(async () => {
  akamon = await startAkamon();
  mail = await akamon.createClient({ name: 'Mail server', legacyPassword: true, redirectUris: ['http://127.0.0.1:9/mail'] });
  modern = await akamon.createClient({ name: 'LMS', redirectUris: ['http://127.0.0.1:9/lms'] });
});
afterAll(() => akamon.close());

const grant = (client: { clientId: string; clientSecret: string | null }, username: string, password: string) =>
  tokenRequest(akamon, client, { grant_type: 'password', username, password, scope: 'openid profile' });

async function withMfa() {
  const account = await akamon.createReadyAccount();
  await akamon.deps.accountService.setMfaRequired(account.commonId, true);
  return account;
}

describe('the password grant of --legacy-password clients', () => {
  test('an account without MFA gets a token with its password; userinfo works with it', async () => {
    const account = await akamon.createReadyAccount({ name: 'Mail User' });
    const response = await grant(mail, account.commonId, account.password);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ token_type: 'Bearer', scope: 'openid profile' });
    const userinfo = await fetch(`${akamon.url}/me`, { headers: { authorization: `Bearer ${response.body.access_token}` } });
    expect(await userinfo.json()).toMatchObject({ sub: account.id, name: 'Mail User', preferred_username: account.commonId });
    const [event] = await akamon.deps.signinLog.list({ accountId: account.id, limit: 1 });
    expect(event).toMatchObject({ result: 'success', reason: 'password_grant_password', client_id: mail.clientId });
  });

  test('an account with MFA is refused its real password and accepted with an app password', async () => {
    const account = await withMfa();
    const refused = await grant(mail, account.commonId, account.password);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_grant');
    const { secret } = await akamon.deps.appPasswords.create(account.id, 'Thunderbird');
    expect(secret).toMatch(/^([a-z]{4} ){4}[a-z]{4}$/);
    expect((await grant(mail, account.commonId, secret)).status).toBe(200);
    // Typed without the spaces, as many mail programs would store it.
    expect((await grant(mail, account.commonId, secret.replace(/ /g, '').toUpperCase())).status).toBe(200);
    const [listed] = await akamon.deps.appPasswords.list(account.id);
    expect(listed).toMatchObject({ name: 'Thunderbird' });
    expect(listed.last_used_at).not.toBeNull();
    const stored = await akamon.deps.database.db.selectFrom('app_password').select('digest').where('account_id', '=', account.id).executeTakeFirstOrThrow();
    expect(stored.digest).not.toContain(secret.replace(/ /g, ''));
  });

  test('a revoked app password stops working at once', async () => {
    const account = await withMfa();
    const { appPassword, secret } = await akamon.deps.appPasswords.create(account.id, 'Phone mail');
    expect((await grant(mail, account.commonId, secret)).status).toBe(200);
    await akamon.deps.appPasswords.revoke(account.id, appPassword.id);
    expect((await grant(mail, account.commonId, secret)).body.error).toBe('invalid_grant');
  });

  test('at most ten app passwords per account', async () => {
    const account = await withMfa();
    for (let i = 0; i < MAX_APP_PASSWORDS; i += 1) await akamon.deps.appPasswords.create(account.id, `device ${i}`);
    await expect(akamon.deps.appPasswords.create(account.id, 'one too many')).rejects.toMatchObject({ code: 'too_many_app_passwords' });
  });

  test('clients without the flag are refused the grant; app passwords never work at the sign-in form path', async () => {
    const account = await withMfa();
    const { secret } = await akamon.deps.appPasswords.create(account.id, 'Laptop');
    const refused = await grant(modern, account.commonId, secret);
    expect(refused.status).toBe(400);
    // oidc-provider answers invalid_request ("requested grant type is not allowed for this client").
    expect(['unauthorized_client', 'invalid_request']).toContain(refused.body.error);
    expect(refused.body.access_token).toBeUndefined();
    const form = await akamon.deps.passwordSignin.signIn({ commonId: account.commonId, password: secret, ip: '127.0.0.3', userAgent: null, clientId: null });
    expect(form.ok).toBe(false);
  });

  test('at a client that also demands MFA, even an account without MFA needs an app password', async () => {
    const strict = await akamon.createClient({ name: 'Wi-Fi RADIUS', legacyPassword: true, requireMfa: true, redirectUris: ['http://127.0.0.1:9/radius'] });
    const account = await akamon.createReadyAccount();
    expect((await grant(strict, account.commonId, account.password)).body.error).toBe('invalid_grant');
    const { secret } = await akamon.deps.appPasswords.create(account.id, 'RADIUS');
    expect((await grant(strict, account.commonId, secret)).status).toBe(200);
  });

  test('failed tries count toward the brute-force limits, and unknown accounts look the same', async () => {
    const account = await akamon.createReadyAccount();
    for (let i = 0; i < 5; i += 1) expect((await grant(mail, account.commonId, `Wrong-${i}-password`)).body.error).toBe('invalid_grant');
    const locked = await grant(mail, account.commonId, account.password);
    expect(locked.body.error).toBe('invalid_grant');
    const row = await akamon.deps.database.db.selectFrom('throttle').selectAll().where('key', '=', `account:${account.commonId}`).executeTakeFirstOrThrow();
    expect(row.failures).toBe(5);
    const unknown = await grant(mail, '7777777777', 'Whatever-password-1');
    expect(unknown).toMatchObject({ status: 400, body: { error: 'invalid_grant', error_description: expect.any(String) } });
    const malformed = await tokenRequest(akamon, mail, { grant_type: 'password', username: 'not-an-id' });
    expect(malformed.status).toBe(400);
  });

  // Found by a security review: a known Common ID's refusal also looked up its factors and app
  // passwords, which an unknown one skipped (about a millisecond on loopback).
  test('an unknown Common ID costs the same statements as a known one with a wrong password (no timing tells them apart)', async () => {
    const statements = async (username: string) => {
      const before = akamon.deps.database.stats().queries;
      expect((await grant(mail, username, 'abcd efgh ijkl mnop qrst')).body.error).toBe('invalid_grant');
      return akamon.deps.database.stats().queries - before;
    };
    const known = await akamon.createReadyAccount();
    const withFactor = await withMfa();
    const counts = { unknown: await statements('7777777701'), known: await statements(known.commonId), mfa: await statements(withFactor.commonId) };
    expect(counts.unknown).toBeGreaterThan(0);
    expect(counts).toEqual({ unknown: counts.known, known: counts.known, mfa: counts.known });
  });

  test('a right password whose access decision fails (the database busy) ends its throttle claims and counts no failure', async () => {
    const account = await akamon.createReadyAccount();
    await grant(mail, account.commonId, 'Wrong-0-password');
    const busy = new Error('the access rules could not be read');
    const attempt = { commonId: account.commonId, password: account.password, ip: '192.0.2.77', userAgent: null, clientId: mail.clientId };
    await expect(akamon.deps.passwordSignin.signIn({ ...attempt, passwordGrant: { admit: () => Promise.reject(busy) } })).rejects.toBe(busy);
    const rows = await akamon.deps.database.db
      .selectFrom('throttle')
      .select(['key', 'failures', 'pending'])
      .where('key', 'in', [`account:${account.commonId}`, 'address:192.0.2.77'])
      .orderBy('key')
      .execute();
    expect(rows).toEqual([
      { key: `account:${account.commonId}`, failures: 1, pending: 0 },
      { key: 'address:192.0.2.77', failures: 0, pending: 0 },
    ]);
  });
});

test('on the account home a person creates an app password (after a second factor), sees it once, and revokes it', async () => {
  const account = await akamon.createReadyAccount();
  const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ';
  const serial = `HOME${Date.now()}`;
  await akamon.deps.tokens.add({ serial, secret, digits: 6, period: 30 });
  await akamon.deps.tokens.assign(serial, account.id);
  const browser = new Browser(akamon.url);
  const home = await enterCredentials(browser, await browser.visit(`${akamon.url}/account`), account.commonId, account.password);
  expect(home.html).toContain('No app passwords.');
  // The sign-in showed only a password, and the account has a token: a second factor first.
  const stepUp = await browser.submit(home, /\/account\/app-passwords$/, { name: 'Thunderbird' });
  expect(stepUp.html).toContain('Verify your identity');
  const back = await browser.submit(stepUp, /\/totp$/, { code: await generate({ secret }) });
  expect(back.url).toBe(`${akamon.url}/account`);
  const created = await browser.submit(back, /\/account\/app-passwords$/, { name: 'Thunderbird' });
  const shown = /<code>([a-z ]{24})<\/code>/.exec(created.html)![1];
  expect(created.html).toContain('it will not be shown again');
  expect((await grant(mail, account.commonId, shown)).status).toBe(200);
  const again = await browser.visit(`${akamon.url}/account`);
  expect(again.html).toContain('Thunderbird');
  expect(again.html).not.toContain(shown);
  await browser.submit(again, /\/revoke$/, {});
  expect((await grant(mail, account.commonId, shown)).body.error).toBe('invalid_grant');
  expect(await akamon.deps.appPasswords.list(account.id)).toHaveLength(0);
  // A revoke of something that is not an app password's id is a no-op, never a 500.
  const page = await browser.visit(`${akamon.url}/account`);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.html)![1];
  for (const id of ['0'.repeat(36), 'x', '00000000-0000-0000-0000-000000000000']) {
    const response = await browser.request(`${akamon.url}/account/app-passwords/${id}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf }),
    });
    expect(response.status).toBe(303);
  }
});
