import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { adminApi, startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { solveCaptcha } from '../support/captcha.ts';
import { refuseWrites } from '../support/faults.ts';
import { mailedCode } from '../support/smtp-sink.ts';
import { enterCredentials } from '../support/flows.ts';

/**
 * A change and its audit record land together or not at all: when the database refuses the record
 * (here a trigger times out the insert), the change is not made either, the caller is told to try
 * again, and the retry makes both. Before, the change was committed first and the record written
 * after it, so a fault in between left a password reissued or an account suspended that the audit
 * did not show.
 */

let akamon: RunningAkamon;

beforeAll(async () => {
  akamon = await startAkamon();
});
afterAll(() => akamon.close());

const account = async (id: string) => (await akamon.deps.accounts.findById(id))!;
const records = async (accountId: string | null, action: string) =>
  (await akamon.deps.audit.list({ limit: 1000 })).filter((event) => event.action === action && (accountId === null || event.account_id === accountId)).length;

/** Until the returned function is called, the audit record `action` (of `accountId`) is refused. */
const refuseRecord = (action: string, accountId?: string) =>
  refuseWrites(akamon.deps.database.db, 'refuse_audit_record', { table: 'audit_event', on: 'insert', when: `new.action = '${action}'${accountId ? ` and new.account_id = '${accountId}'` : ''}` });

describe('an operator task whose audit record is refused', () => {
  // Found by a probe of the operator surfaces: the keys were rotated first and recorded after.
  test('a key rotation: 503 and no key published; the retry publishes keys with their record', async () => {
    const live = async () => (await akamon.deps.database.db.selectFrom('signing_key').select('kid').where('retired_at', 'is', null).execute()).map((k) => k.kid).sort();
    const before = await live();
    const stop = await refuseRecord('keys.rotated');
    try {
      expect((await adminApi(akamon, 'POST', '/keys/rotate')).status).toBe(503);
    } finally {
      await stop();
    }
    expect(await live()).toEqual(before);
    expect(await records(null, 'keys.rotated')).toBe(0);

    const rotated = await adminApi(akamon, 'POST', '/keys/rotate');
    expect(rotated.status).toBe(200);
    expect(await live()).toEqual([...rotated.body.kids].sort());
    expect(await records(null, 'keys.rotated')).toBe(1);
  });

  test('a record refused by an error of its statement: the admin API answers JSON 500 server_error, not an HTML page', async () => {
    const before = akamon.logs.length;
    const recorded = await records(null, 'keys.rotated');
    const stop = await refuseWrites(akamon.deps.database.db, 'refuse_audit_record', { table: 'audit_event', on: 'insert', when: "new.action = 'keys.rotated'", sqlState: 'P0001' });
    let response: Response;
    try {
      response = await fetch(`${akamon.url}/admin/api/keys/rotate`, { method: 'POST', headers: { authorization: `Bearer ${akamon.operatorToken}` } });
    } finally {
      await stop();
    }
    expect({ status: response.status, type: response.headers.get('content-type') }).toEqual({ status: 500, type: expect.stringMatching(/^application\/json/) });
    expect(await response.json()).toEqual({ error: 'server_error', error_description: 'the request could not be completed; try again later' });
    // Told in the log, with its stack there only.
    expect(akamon.logs.slice(before).join('')).toMatch(/"msg":"admin request failed"/);
    expect(await records(null, 'keys.rotated')).toBe(recorded);
  });

  test('a password reissue: 503, the old password and its sessions stay; the retry makes both', async () => {
    const { id, commonId } = await akamon.createReadyAccount();
    const before = await account(id);
    const reissue = () => adminApi(akamon, 'POST', `/accounts/${commonId}/reissue-password`, { checked: 'student card', by: 'desk' });
    const stop = await refuseRecord('password.reissued', id);
    try {
      const refused = await reissue();
      expect(refused.status).toBe(503);
      expect(refused.body.initialPassword).toBeUndefined();
    } finally {
      await stop();
    }
    const after = await account(id);
    expect(after.password_hash).toBe(before.password_hash);
    expect(after.sessions_ended_at).toEqual(before.sessions_ended_at);
    expect(await records(id, 'password.reissued')).toBe(0);

    expect((await reissue()).status).toBe(200);
    expect((await account(id)).password_hash).not.toBe(before.password_hash);
    expect(await records(id, 'password.reissued')).toBe(1);
  });

  test('a suspension: 503 and the account stays active; the retry suspends it with its record', async () => {
    const { id, commonId } = await akamon.createReadyAccount();
    const suspend = () => adminApi(akamon, 'POST', `/accounts/${commonId}/suspend`, { reason: 'audit test' });
    const stop = await refuseRecord('account.suspended', id);
    try {
      expect((await suspend()).status).toBe(503);
    } finally {
      await stop();
    }
    expect((await account(id)).status).toBe('active');
    expect((await suspend()).status).toBe(200);
    expect((await account(id)).status).toBe('suspended');
    expect(await records(id, 'account.suspended')).toBe(1);
  });

  test('a client registration: 503 and no client; the retry registers it with its record', async () => {
    const register = () => adminApi(akamon, 'POST', '/clients', { name: 'Audited Portal', redirectUris: ['https://portal.example.ac.jp/cb'] });
    const recordsBefore = await records(null, 'client.created');
    const stop = await refuseRecord('client.created');
    try {
      expect((await register()).status).toBe(503);
    } finally {
      await stop();
    }
    const named = async () => (await akamon.deps.clientStore.list()).filter((client) => client.name === 'Audited Portal').length;
    expect(await named()).toBe(0);
    expect(await records(null, 'client.created')).toBe(recordsBefore);
    const made = await register();
    expect(made.status).toBe(201);
    expect(await named()).toBe(1);
    expect(await records(null, 'client.created')).toBe(recordsBefore + 1);
  });
});

describe('a recovery whose audit record is refused', () => {
  test('identity verification: no temporary password is made, the old one stays', async () => {
    const { id } = await akamon.createReadyAccount();
    const before = await account(id);
    const stop = await refuseRecord('password.reissued', id);
    try {
      await expect(akamon.deps.idv.recover(before, 'password')).rejects.toThrow();
    } finally {
      await stop();
    }
    expect((await account(id)).password_hash).toBe(before.password_hash);
    expect(await records(id, 'password.reissued')).toBe(0);
  });

  test('a password reset by email: a page asking to try again, the old password stays; sending the form again resets it', async () => {
    const { id, commonId } = await akamon.createReadyAccount();
    const before = await account(id);
    const email = `audit-${commonId}@example.com`;
    await akamon.deps.accounts.setRecoveryEmail(id, email);
    const browser = new Browser(akamon.url);
    const first = await browser.visit(`${akamon.url}/recover`);
    const codePage = await browser.submit(first, /\/recover\/start$/, { identifier: commonId, captcha: await solveCaptcha(first) });
    const passwordPage = await browser.submit(codePage, /\/recover\/code$/, { code: mailedCode(akamon.mails, email) });
    const next = 'Recovered-Password-42';
    const stop = await refuseRecord('password.reset', id);
    try {
      const refused = await browser.submit(passwordPage, /\/recover\/password$/, { new: next, confirm: next });
      expect(refused.status).toBe(503);
    } finally {
      await stop();
    }
    expect((await account(id)).password_hash).toBe(before.password_hash);
    expect(await records(id, 'password.reset')).toBe(0);
    const done = await browser.submit(passwordPage, /\/recover\/password$/, { new: next, confirm: next });
    expect(done.html).toContain('Your password was changed');
    expect((await account(id)).password_hash).not.toBe(before.password_hash);
    expect(await records(id, 'password.reset')).toBe(1);
  });
});

describe("a person's own change whose audit record is refused", () => {
  /** The account home at `path`, signed in with the password in a new browser. */
  async function homeAt(person: { commonId: string; password: string }, path: string) {
    const browser = new Browser(akamon.url);
    const page = await enterCredentials(browser, await browser.visit(`${akamon.url}${path}`), person.commonId, person.password);
    expect(new URL(page.url).pathname).toBe(path);
    return { browser, page };
  }

  test('a password change on the security page: an error page, the old password stays; the retry changes it', async () => {
    const person = await akamon.createReadyAccount();
    const before = await account(person.id);
    const { browser, page } = await homeAt(person, '/account/security');
    const next = 'Changed-With-Record-27';
    const change = () => browser.submit(page, /\/account\/security\/password$/, { current: person.password, new: next, confirm: next });
    const stop = await refuseRecord('password.changed', person.id);
    try {
      expect((await change()).status).toBe(503);
    } finally {
      await stop();
    }
    expect((await account(person.id)).password_hash).toBe(before.password_hash);
    expect(await records(person.id, 'password.changed')).toBe(0);
    expect((await change()).html).toContain('Your password was changed.');
    expect((await account(person.id)).password_hash).not.toBe(before.password_hash);
    expect(await records(person.id, 'password.changed')).toBe(1);
  });

  test('a new authenticator app: not saved, and its code not spent; the retry with the same code saves it with its record', async () => {
    const person = await akamon.createReadyAccount();
    const { generate } = await import('otplib');
    const pending = akamon.deps.mfa.pendingTotp();
    const code = await generate({ secret: pending.secret });
    const stop = await refuseRecord('mfa.enrolled', person.id);
    try {
      await expect(akamon.deps.mfa.confirmTotp(person.id, pending.sealed, code, 'Phone app')).rejects.toThrow();
    } finally {
      await stop();
    }
    expect(await akamon.deps.mfa.factors(person.id)).toHaveLength(0);
    expect(await records(person.id, 'mfa.enrolled')).toBe(0);
    expect((await akamon.deps.mfa.confirmTotp(person.id, pending.sealed, code, 'Phone app')).ok).toBe(true);
    expect(await akamon.deps.mfa.factors(person.id)).toHaveLength(1);
    expect(await records(person.id, 'mfa.enrolled')).toBe(1);
  });

  // Found in the final read: the revoke's catch took the database's refusal for "already gone".
  test('an app password revoked at the account home: the refusal is a 503, not a silent return; the retry revokes it', async () => {
    const person = await akamon.createReadyAccount();
    const { appPassword } = await akamon.deps.appPasswords.create(person.id, 'Mail');
    const { browser } = await homeAt(person, '/account');
    const home = await browser.visit(`${akamon.url}/account`);
    const revoke = () => browser.submit(home, new RegExp(`/account/app-passwords/${appPassword.id}/revoke$`), {});
    const stop = await refuseRecord('app_password.revoked', person.id);
    try {
      expect((await revoke()).status).toBe(503);
    } finally {
      await stop();
    }
    expect(await akamon.deps.appPasswords.list(person.id)).toHaveLength(1);
    expect(new URL((await revoke()).url).pathname).toBe('/account');
    expect(await akamon.deps.appPasswords.list(person.id)).toHaveLength(0);
    expect(await records(person.id, 'app_password.revoked')).toBe(1);
  });

  test('"sign out everywhere": the sessions stay until the retry ends them with the record', async () => {
    const person = await akamon.createReadyAccount();
    const { browser, page } = await homeAt(person, '/account');
    const signOut = () => browser.submit(page, /\/account\/sign-out-everywhere$/, {});
    const stop = await refuseRecord('sessions.ended', person.id);
    try {
      expect((await signOut()).status).toBe(503);
    } finally {
      await stop();
    }
    expect((await account(person.id)).sessions_ended_at).toBeNull();
    expect((await browser.visit(`${akamon.url}/account`)).url).toBe(`${akamon.url}/account`);
    expect(new URL((await signOut()).url).pathname).toBe('/');
    expect((await account(person.id)).sessions_ended_at).not.toBeNull();
    expect(await records(person.id, 'sessions.ended')).toBe(1);
  });
});
