import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { backchannelReceiver } from '../support/backchannel.ts';
import { refuseWrites } from '../support/faults.ts';
import { enterCredentials, redeem, signIn, startAuthorization, tokenRequest } from '../support/flows.ts';

// The clock of the app starts on the day before a graduation (JST) and is moved across it.
const clock = {
  current: new Date('2027-03-30T12:00:00+09:00'),
  now() {
    return this.current;
  },
};
let akamon: RunningAkamon;

beforeAll(async () => {
  akamon = await startAkamon({ clock, env: { AKAMON_BACKCHANNEL_ALLOW_PRIVATE: 'true' } });
});
afterAll(() => akamon.close());

async function admin(method: string, path: string, body?: unknown) {
  const response = await fetch(`${akamon.url}/admin/api${path}`, {
    method,
    headers: { authorization: `Bearer ${akamon.operatorToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

describe('scheduled revocation', () => {
  test('is applied by the lifecycle job at its time: sessions and refresh tokens end, back-channel RPs are told, sign-in is refused', async () => {
    clock.current = new Date('2027-03-30T12:00:00+09:00');
    const rp = await backchannelReceiver();
    try {
      const client = await akamon.createClient({ name: 'LMS', backchannelLogoutUri: rp.url, redirectUris: ['http://127.0.0.1:9/lms'] });
      const account = await akamon.createReadyAccount({ name: 'Graduating Student' });
      const browser = new Browser(akamon.url);
      const session = await signIn(browser, akamon, client, account);
      const tokens = await redeem(akamon, client, session.code!, session.verifier);
      expect(tokens.body.refresh_token).toBeTruthy();

      const scheduled = await admin('POST', `/accounts/${account.commonId}/revoke`, { on: '2027-03-31', reason: 'graduation' });
      expect(scheduled.status).toBe(200);
      expect(scheduled.body).toMatchObject({ status: 'active', revokeAt: '2027-03-31T00:00:00+09:00', revokeReason: 'graduation', revokedAt: null });
      const due = await admin('GET', '/revocations?until=2027-04-01');
      expect(due.body.accounts.map((a: { commonId: string }) => a.commonId)).toContain(account.commonId);
      expect((await admin('GET', '/revocations?until=2027-03-30')).body.accounts.map((a: { commonId: string }) => a.commonId)).not.toContain(account.commonId);

      // Not yet: the job leaves it alone and the refresh token works.
      await akamon.akamon.sweeper.sweep();
      expect((await akamon.deps.accounts.findById(account.id))!.status).toBe('active');
      const refreshed = await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token });
      expect(refreshed.status).toBe(200);

      // Midnight in Tokyo: revoked by the next run.
      clock.current = new Date('2027-03-31T00:00:30+09:00');
      await akamon.akamon.sweeper.sweep();
      const row = (await akamon.deps.accounts.findById(account.id))!;
      expect(row.status).toBe('revoked');
      expect(new Date(row.revoked_at!).toISOString()).toBe(clock.current.toISOString());
      expect(row.revoke_at).toBeNull();
      expect((await akamon.deps.audit.list({ accountId: account.id, limit: 1 }))[0]).toMatchObject({ actor: 'system', action: 'account.revoked', details: { scheduled: true, reason: 'graduation' } });

      expect((await tokenRequest(akamon, client, { grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token })).body.error).toBe('invalid_grant');
      const [logoutToken] = await rp.waitFor(1);
      const claims = JSON.parse(Buffer.from(logoutToken.split('.')[1], 'base64url').toString());
      expect(claims.aud).toBe(client.clientId);
      expect(claims.events).toHaveProperty(['http://schemas.openid.net/event/backchannel-logout']);
      // The old browser's session is gone: it is asked to sign in again (silent SSO fails) ...
      expect(new URL((await startAuthorization(browser, akamon, client, { prompt: 'none' })).page.url).searchParams.get('error')).toBe('login_required');
      // ... and the right password is refused with a clear page.
      const fresh = new Browser(akamon.url);
      const again = await startAuthorization(fresh, akamon, client);
      const refused = await enterCredentials(fresh, again.page, account.commonId, account.password);
      expect(refused.status).toBe(403);
      expect(refused.html).toContain('has been closed');
      // A second run finds nothing more to do.
      await akamon.akamon.sweeper.sweep();
      expect((await akamon.deps.audit.list({ accountId: account.id, limit: 5 })).filter((e) => e.action === 'account.revoked')).toHaveLength(1);
    } finally {
      await rp.close();
      clock.current = new Date('2027-03-30T12:00:00+09:00');
    }
  });

  test('one that fails half-way is not half-applied: that account stays due, signed in, and the others are revoked; the next run finishes it', async () => {
    clock.current = new Date('2027-03-30T12:00:00+09:00');
    const client = await akamon.createClient({ name: 'LMS', redirectUris: ['http://127.0.0.1:9/lms'] });
    const [first, second] = [await akamon.createReadyAccount(), await akamon.createReadyAccount()];
    for (const person of [first, second]) {
      const session = await signIn(new Browser(akamon.url), akamon, client, person);
      expect((await redeem(akamon, client, session.code!, session.verifier)).status).toBe(200);
      expect((await admin('POST', `/accounts/${person.commonId}/revoke`, { on: '2027-03-31', reason: 'graduation' })).status).toBe(200);
    }
    const db = akamon.deps.database.db;
    const state = async (person: { id: string }) => {
      const row = (await akamon.deps.accounts.findById(person.id))!;
      const sessions = await db.selectFrom('oidc_payload').select('id').where('model', '=', 'Session').where('account_id', '=', person.id).execute();
      const audits = (await akamon.deps.audit.list({ accountId: person.id, limit: 10 })).filter((e) => e.action === 'account.revoked');
      return { status: row.status, due: row.revoke_at !== null, sessions: sessions.length, audits: audits.length };
    };
    // The first account's audit record, the revocation's last step, fails (an error of that statement).
    const stop = await refuseWrites(db, 'refuse_revoked_audit', { table: 'audit_event', on: 'insert', when: `new.account_id = '${first.id}' and new.action = 'account.revoked'`, sqlState: 'P0001' });
    clock.current = new Date('2027-03-31T00:00:30+09:00');
    try {
      await expect(akamon.deps.revocations.applyDue(100)).rejects.toThrow('stalled by the test');
      expect(await state(first)).toEqual({ status: 'active', due: true, sessions: 1, audits: 0 });
      expect(await state(second)).toEqual({ status: 'revoked', due: false, sessions: 0, audits: 1 });
    } finally {
      await stop();
    }
    await akamon.deps.revocations.applyDue(100);
    expect(await state(first)).toEqual({ status: 'revoked', due: false, sessions: 0, audits: 1 });
    expect(await state(second)).toEqual({ status: 'revoked', due: false, sessions: 0, audits: 1 });
    clock.current = new Date('2027-03-30T12:00:00+09:00');
  });

  // Found by a fault review: each account's relying parties were told before the next account was
  // revoked, so one relying party that hangs held the job for its timeout once per account.
  test('a relying party that hangs does not hold up the next accounts: all are told at once, and the job ends when they are', async () => {
    clock.current = new Date('2027-03-30T12:00:00+09:00');
    const held: http.ServerResponse[] = [];
    let most = 0;
    const hanging = http.createServer((_request, response) => {
      held.push(response);
      most = Math.max(most, held.length);
    });
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    let job: Promise<number> | undefined;
    try {
      const client = await akamon.createClient({
        name: 'Slow LMS',
        backchannelLogoutUri: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/logout`,
        redirectUris: ['http://127.0.0.1:9/lms'],
      });
      const people = [await akamon.createReadyAccount(), await akamon.createReadyAccount(), await akamon.createReadyAccount()];
      for (const person of people) {
        const session = await signIn(new Browser(akamon.url), akamon, client, person);
        expect((await redeem(akamon, client, session.code!, session.verifier)).status).toBe(200);
        expect((await admin('POST', `/accounts/${person.commonId}/revoke`, { on: '2027-03-31', reason: 'graduation' })).status).toBe(200);
      }
      clock.current = new Date('2027-03-31T00:00:30+09:00');
      job = akamon.deps.revocations.applyDue(100);
      // The relying party holds every notice it gets: all three arrive while it holds the first.
      const deadline = Date.now() + 2000;
      while (most < people.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(most).toBe(people.length);
      for (const response of held) response.end();
      expect(await job).toBeGreaterThanOrEqual(people.length);
      for (const person of people) expect((await akamon.deps.accounts.findById(person.id))!.status).toBe('revoked');
    } finally {
      for (const response of held) response.end();
      await job?.catch(() => undefined);
      await new Promise((resolve) => hanging.close(resolve));
      clock.current = new Date('2027-03-30T12:00:00+09:00');
    }
  });

  test('can be cancelled before it is due', async () => {
    clock.current = new Date('2027-03-30T12:00:00+09:00');
    const account = await akamon.createReadyAccount();
    await admin('POST', `/accounts/${account.commonId}/revoke`, { on: '2027-03-31T09:00:00+09:00', reason: 'resignation' });
    const cancelled = await admin('DELETE', `/accounts/${account.commonId}/revocation`);
    expect(cancelled.body).toMatchObject({ revokeAt: null, status: 'active' });
    clock.current = new Date('2027-04-02T00:00:00+09:00');
    await akamon.akamon.sweeper.sweep();
    expect((await akamon.deps.accounts.findById(account.id))!.status).toBe('active');
    expect((await akamon.deps.audit.list({ accountId: account.id, limit: 1 }))[0]).toMatchObject({ action: 'account.revocation_cancelled' });
    expect((await admin('DELETE', `/accounts/${account.commonId}/revocation`)).status).toBe(409);
    clock.current = new Date('2027-03-30T12:00:00+09:00');
  });

  test('bad requests are refused with 4xx and change nothing', async () => {
    clock.current = new Date('2027-03-30T12:00:00+09:00');
    const account = await akamon.createReadyAccount();
    const cases: Array<[unknown, number, RegExp]> = [
      [{ on: '2027-02-30' }, 400, /must be a date/],
      [{ on: 'next tuesday' }, 400, /must be a date/],
      [{ on: 20270331 }, 400, /must be a date/],
      [{ on: '2026-01-01' }, 400, /has passed/],
      [{ on: '2027-04-01', reason: '<script>' }, 400, /reason must be/],
      [{ on: '2027-04-01', reason: 'x'.repeat(101) }, 400, /reason must be/],
    ];
    for (const [body, status, message] of cases) {
      const response = await admin('POST', `/accounts/${account.commonId}/revoke`, body);
      expect(response.status).toBe(status);
      expect(response.body.error_description).toMatch(message);
    }
    expect((await akamon.deps.accounts.findById(account.id))!.revoke_at).toBeNull();
    expect((await admin('POST', '/accounts/0000000000/revoke', { on: '2027-04-01' })).status).toBe(404);
    expect((await admin('GET', '/revocations?until=soon')).status).toBe(400);
    await admin('POST', `/accounts/${account.commonId}/revoke`, { reason: 'resignation' });
    const again = await admin('POST', `/accounts/${account.commonId}/revoke`, { on: '2027-04-01' });
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('already_revoked');
  });

  test('a relying party told of an immediate revocation finds the session already ended when it checks back', async () => {
    clock.current = new Date('2027-03-30T12:00:00+09:00');
    const account = await akamon.createReadyAccount();
    const sessions = async () => (await akamon.deps.database.db.selectFrom('oidc_payload').select('id').where('model', '=', 'Session').where('account_id', '=', account.id).execute()).length;
    const rp = await backchannelReceiver(sessions);
    try {
      const client = await akamon.createClient({ name: 'LMS', backchannelLogoutUri: rp.url, redirectUris: ['http://127.0.0.1:9/lms'] });
      const session = await signIn(new Browser(akamon.url), akamon, client, account);
      expect((await redeem(akamon, client, session.code!, session.verifier)).status).toBe(200);
      expect(await sessions()).toBe(1);
      expect((await admin('POST', `/accounts/${account.commonId}/revoke`, { reason: 'resignation' })).status).toBe(200);
      // Told once the revocation answered, and by then the session was gone.
      expect(rp.received).toHaveLength(1);
      expect(rp.found).toEqual([0]);
    } finally {
      await rp.close();
    }
  });

  test('an immediate revocation keeps its reason and time; activating the account clears the time', async () => {
    clock.current = new Date('2027-03-30T12:00:00+09:00');
    const account = await akamon.createReadyAccount();
    const revoked = await admin('POST', `/accounts/${account.commonId}/revoke`, { reason: 'resignation' });
    expect(revoked.body).toMatchObject({ status: 'revoked', revokeReason: 'resignation', revokedAt: '2027-03-30T12:00:00+09:00' });
    const active = await admin('POST', `/accounts/${account.commonId}/activate`);
    expect(active.body).toMatchObject({ status: 'active', revokedAt: null });
  });
});
