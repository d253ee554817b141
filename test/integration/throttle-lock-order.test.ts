import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { ACCOUNT_RULE, ADDRESS_RULE, LoginThrottle, type ThrottleKey } from '../../src/throttle/login-throttle.ts';
import { createTestDatabase, testDatabaseUrl, type TestDatabase } from '../support/database.ts';

/**
 * A guess's outcome and another guess's claim on the same keys (the account, then the address), at
 * the same moment on PostgreSQL. The outcome's statement once took the address's row first, while
 * the claim holds the account's and waits for the address's: a deadlock, and when PostgreSQL ended
 * the outcome, a checked guess went uncounted and answered 503 (CI: 4 of 12 parallel guesses checked
 * with 401). Here the test holds the address's row, lets both statements queue up behind it, in
 * that order, and then lets go. Only PostgreSQL runs statements side by side (PGlite has one connection).
 */
const suite = testDatabaseUrl ? describe : describe.skip;

suite('the throttle takes a call’s rows in the order of its keys', () => {
  let handle: TestDatabase;
  let holder: Database;
  let throttle: LoginThrottle;

  beforeAll(async () => {
    handle = await createTestDatabase();
    holder = await openDatabase({ url: handle.url, schema: handle.schema, poolMax: 1 });
    throttle = new LoginThrottle(handle.database.db, systemClock);
  });
  afterAll(async () => {
    await holder.close();
    await handle.database.close();
  });

  /** The backends waiting for a lock that one of `pids` holds, or waits for ahead of them. */
  async function waitingBehind(pids: number[]): Promise<number[]> {
    const { rows } = await sql<{ pid: number }>`select pid from pg_stat_activity where pg_blocking_pids(pid) && ${pids}::int[]`.execute(handle.database.db);
    return rows.map((row) => row.pid).filter((pid) => !pids.includes(pid));
  }

  /** Resolves once a backend waits behind `pids`: the statement just sent has queued for its row. */
  async function queuedBehind(pids: number[]): Promise<number> {
    for (;;) {
      const [pid] = await waitingBehind(pids);
      if (pid !== undefined) return pid;
    }
  }

  const endings = {
    failed: (keys: ThrottleKey[]) => throttle.failed(keys),
    succeeded: (keys: ThrottleKey[]) => throttle.succeeded(keys),
    release: (keys: ThrottleKey[]) => throttle.release(keys),
  };

  test.each(Object.keys(endings) as Array<keyof typeof endings>)('%s, while another guess claims the same keys: both go through', async (ending) => {
    const keys = [
      { key: `account:${randomUUID()}`, rule: ACCOUNT_RULE },
      { key: `address:${randomUUID()}`, rule: ADDRESS_RULE },
    ];
    expect(await throttle.reserve(keys)).toEqual({ waitSeconds: 0, blocked: false });
    // The test's own transaction holds the address's row until it lets go.
    const held = Promise.withResolvers<number>();
    const letGo = Promise.withResolvers<void>();
    const holderDone = holder.db.transaction().execute(async (trx) => {
      await sql`select 1 from throttle where key = ${keys[1]!.key} for update`.execute(trx);
      const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
      held.resolve(rows[0]!.pid);
      await letGo.promise;
    });
    const holderPid = await held.promise;
    const ended = endings[ending](keys);
    const endingPid = await queuedBehind([holderPid]);
    const claimed = throttle.reserve(keys);
    await queuedBehind([holderPid, endingPid]);
    letGo.resolve();
    await holderDone;
    await ended;
    expect(await claimed).toEqual({ waitSeconds: 0, blocked: false });
    const rows = await handle.database.db
      .selectFrom('throttle')
      .select(['key', 'failures', 'pending'])
      .where(
        'key',
        'in',
        keys.map(({ key }) => key),
      )
      .orderBy('key')
      .execute();
    // The second guess's claim is the only one left; only a failure counts.
    expect(rows.map(({ failures, pending }) => ({ failures, pending }))).toEqual([
      { failures: ending === 'failed' ? 1 : 0, pending: 1 },
      { failures: ending === 'failed' ? 1 : 0, pending: 1 },
    ]);
  });
});
