import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import type { DB } from '../../src/db/schema.ts';
import { adminApi, startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { testDatabaseUrl } from '../support/database.ts';
import { redeem, signIn } from '../support/flows.ts';
import { ScimClient } from '../support/scim-client.ts';

/**
 * Rows taken in one order by changes that meet. A change that ends an account's sessions (a suspension here) and a change on the account home,
 * which holds its session while it changes the account (home-session.ts whileLive), at the same
 * moment on PostgreSQL. Both lock the session's row and the account's: in that order, or they
 * deadlock and PostgreSQL aborts one (a 503, or the person's change lost). The test's transaction
 * plays the account home: it holds the session, lets the suspension queue up behind it, then
 * changes the account. Only PostgreSQL runs transactions side by side (PGlite has one connection).
 */
const suite = testDatabaseUrl ? describe : describe.skip;

suite('a session-ending change and an account-home change take their rows in one order', () => {
  let akamon: RunningAkamon;
  beforeAll(async () => {
    akamon = await startAkamon();
  });
  afterAll(() => akamon.close());

  /** Resolves once a backend waits for a lock that `pid` holds: the request just sent has queued behind it (fails after 10 s). */
  async function queuedBehind(db: Kysely<DB>, pid: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const { rows } = await sql<{ pid: number }>`select pid from pg_stat_activity where ${pid}::int = any(pg_blocking_pids(pid))`.execute(db);
      if (rows.length > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error('the request never queued behind the held session');
  }

  /** Suspends by the admin API, and by a SCIM write (which locks the account's row inside its own transaction). */
  const suspensions: Array<[string, (commonId: string, accountId: string) => Promise<{ status: number }>]> = [
    ['the admin API', (commonId) => adminApi(akamon, 'POST', `/accounts/${commonId}/suspend`, {})],
    [
      'SCIM',
      async (_commonId, accountId) => {
        const token = await adminApi(akamon, 'POST', '/operators/tokens', { name: `sis-${accountId.slice(0, 8)}`, role: 'provisioning', departments: [], wholeUniversity: true });
        return new ScimClient(`${akamon.url}/scim/v2`, token.body.token as string).patchUser(accountId, [{ op: 'replace', path: 'active', value: false }]);
      },
    ],
  ];

  test.each(suspensions)('a suspension by %s while the account home holds the session waits for it, and both land', async (_by, suspend) => {
    const account = await akamon.createReadyAccount();
    const client = await akamon.createClient({ name: 'LMS', redirectUris: ['http://127.0.0.1:9/lms'] });
    const session = await signIn(new Browser(akamon.url), akamon, client, account);
    expect((await redeem(akamon, client, session.code!, session.verifier)).status).toBe(200);
    const db = akamon.deps.database.db;
    let suspension: Promise<{ status: number }> | undefined;
    await db.transaction().execute(async (trx) => {
      const [me] = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)).rows;
      await sql`select id from oidc_payload where model = 'Session' and account_id = ${account.id} for share`.execute(trx);
      suspension = suspend(account.commonId, account.id);
      await queuedBehind(db, me!.pid);
      await sql`update account set recovery_email = 'home@example.com' where id = ${account.id}`.execute(trx);
    });
    expect((await suspension!).status).toBe(200);
    expect(await akamon.deps.accounts.findById(account.id)).toMatchObject({ status: 'suspended', recovery_email: 'home@example.com' });
    const sessions = await db.selectFrom('oidc_payload').select('id').where('model', '=', 'Session').where('account_id', '=', account.id).execute();
    expect(sessions).toEqual([]);
  });

  // Found by a review: an operator's MFA reset, one unit with its audit record, deleted the factor
  // rows and only then (the audit row's reference) waited for the account's row, while every factor
  // change of the person takes the account's row first: one of the two was aborted (a 503).
  test("an operator's MFA reset while the person changes a factor waits for it, and both land", async () => {
    const account = await akamon.createReadyAccount();
    await akamon.deps.mfaStore.insert({ accountId: account.id, kind: 'totp', label: 'Phone' });
    const db = akamon.deps.database.db;
    let reset: Promise<{ status: number }> | undefined;
    await db.transaction().execute(async (trx) => {
      const [me] = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)).rows;
      // The person's factor change (MfaStore.setDefault): the account's row, then the factors'.
      await sql`select id from account where id = ${account.id} for update`.execute(trx);
      reset = adminApi(akamon, 'POST', `/accounts/${account.commonId}/reset-mfa`, { reason: 'lost phone' });
      await queuedBehind(db, me!.pid);
      await sql`update mfa_factor set is_default = true where account_id = ${account.id}`.execute(trx);
    });
    expect((await reset!).status).toBe(200);
    expect(await akamon.deps.mfa.factors(account.id)).toEqual([]);
  });
});
