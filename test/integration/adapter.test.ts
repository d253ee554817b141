import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import crypto from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { errors, type AdapterPayload } from 'oidc-provider';
import type { DB } from '../../src/db/schema.ts';
import { postgresAdapter, tokenAccountMemoKey } from '../../src/oidc/adapter.ts';
import { OidcPayloadStore } from '../../src/oidc/oidc-payload.store.ts';
import { Sweeper } from '../../src/shared/sweeper.ts';
import { inRequestMemo, recalled } from '../../src/shared/request-memo.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let testDb: TestDatabase;
let db: Kysely<DB>;
let Adapter: ReturnType<typeof postgresAdapter>;
const clientLookups: string[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = testDb.database.db;
  Adapter = postgresAdapter(db, async (id) => {
    clientLookups.push(id);
    return id === 'known-client' ? { client_id: id, redirect_uris: ['https://rp.example/cb'] } : undefined;
  });
});
afterAll(() => testDb.database.close());
beforeEach(async () => {
  await db.deleteFrom('oidc_payload').execute();
});

const uniqueId = (prefix: string) => `${prefix}-${crypto.randomBytes(6).toString('hex')}`;

/** Every row of the table as "Model:id", sorted. */
async function rowKeys(): Promise<string[]> {
  const rows = await db.selectFrom('oidc_payload').select(['model', 'id']).execute();
  return rows.map((r) => `${r.model}:${r.id}`).sort();
}

async function expire(model: string, id: string): Promise<void> {
  await db
    .updateTable('oidc_payload')
    .set({ expires_at: sql<Date>`now() - interval '1 second'` as never })
    .where('model', '=', model)
    .where('id', '=', id)
    .execute();
}

/** Inserts `count` rows directly; `expired` decides whether they are already past expiry. */
async function insertRows(count: number, options: { model?: string; expired: boolean; prefix?: string }): Promise<void> {
  const model = options.model ?? 'Session';
  const prefix = options.prefix ?? uniqueId('bulk');
  const expires = options.expired ? sql`now() - interval '1 hour'` : sql`now() + interval '1 hour'`;
  await sql`
    insert into oidc_payload (model, id, payload, expires_at)
    select ${model}, ${prefix} || '-' || n, '{}'::jsonb, ${expires}
    from generate_series(1, ${count}::int) as n`.execute(db);
}

async function countRows(): Promise<{ expired: number; live: number }> {
  const row = await sql<{ expired: string | number; live: string | number }>`
    select count(*) filter (where expires_at < now()) as expired,
           count(*) filter (where expires_at is null or expires_at >= now()) as live
    from oidc_payload`.execute(db);
  return { expired: Number(row.rows[0].expired), live: Number(row.rows[0].live) };
}

describe('postgresAdapter', () => {
  test('upsert then find returns the payload; a second upsert replaces it', async () => {
    const sessions = new Adapter('Session');
    const id = uniqueId('sess');
    await sessions.upsert(id, { accountId: 'acc-1', uid: 'uid-1', loginTs: 1700000000 } as AdapterPayload, 3600);
    expect(await sessions.find(id)).toEqual({ accountId: 'acc-1', uid: 'uid-1', loginTs: 1700000000 });

    await sessions.upsert(id, { accountId: 'acc-1', uid: 'uid-2', loginTs: 1700000001 } as AdapterPayload, 3600);
    expect(await sessions.find(id)).toEqual({ accountId: 'acc-1', uid: 'uid-2', loginTs: 1700000001 });
    const rows = await db.selectFrom('oidc_payload').selectAll().where('id', '=', id).execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ model: 'Session', uid: 'uid-2', account_id: 'acc-1', consumed_at: null });
    const expiresIn = (new Date(rows[0].expires_at!).getTime() - Date.now()) / 1000;
    expect(expiresIn).toBeGreaterThan(3500);
    expect(expiresIn).toBeLessThanOrEqual(3601);
  });

  test('find is per model and gives undefined for unknown ids', async () => {
    const id = uniqueId('same');
    await new Adapter('AccessToken').upsert(id, { kind: 'AccessToken', jti: id } as AdapterPayload, 60);
    expect(await new Adapter('AccessToken').find(id)).toMatchObject({ kind: 'AccessToken' });
    expect(await new Adapter('RefreshToken').find(id)).toBeUndefined();
    expect(await new Adapter('AccessToken').find('no-such-id')).toBeUndefined();
  });

  test('an expiresIn of 0 means the row never expires', async () => {
    const id = uniqueId('forever');
    await new Adapter('Grant').upsert(id, { accountId: 'a' } as AdapterPayload, 0);
    const row = await db.selectFrom('oidc_payload').select('expires_at').where('id', '=', id).executeTakeFirstOrThrow();
    expect(row.expires_at).toBeNull();
    expect(await new Adapter('Grant').find(id)).toEqual({ accountId: 'a' });
  });

  test('findByUid finds by uid within the model only', async () => {
    const sessions = new Adapter('Session');
    const id = uniqueId('sess');
    const uid = uniqueId('uid');
    await sessions.upsert(id, { uid, accountId: 'acc' } as AdapterPayload, 3600);
    expect(await sessions.findByUid(uid)).toEqual({ uid, accountId: 'acc' });
    expect(await sessions.findByUid('other-uid')).toBeUndefined();
    expect(await new Adapter('Interaction').findByUid(uid)).toBeUndefined();
  });

  test('expired rows are not found by id or uid', async () => {
    const sessions = new Adapter('Session');
    const id = uniqueId('sess');
    const uid = uniqueId('uid');
    await sessions.upsert(id, { uid } as AdapterPayload, 3600);
    expect(await sessions.find(id)).toBeDefined();
    await expire('Session', id);
    expect(await sessions.find(id)).toBeUndefined();
    expect(await sessions.findByUid(uid)).toBeUndefined();
    // Upserting again revives it with a fresh expiry.
    await sessions.upsert(id, { uid } as AdapterPayload, 3600);
    expect(await sessions.find(id)).toEqual({ uid });
  });

  test('Client comes from the client source and cannot be written', async () => {
    const clients = new Adapter('Client');
    expect(await clients.find('known-client')).toMatchObject({ client_id: 'known-client' });
    expect(await clients.find('unknown-client')).toBeUndefined();
    expect(clientLookups).toEqual(expect.arrayContaining(['known-client', 'unknown-client']));
    await expect(clients.upsert('x', { client_id: 'x' } as AdapterPayload, 0)).rejects.toThrow();
    expect(await rowKeys()).toEqual([]);
  });

  test('consume marks the row consumed with epoch seconds', async () => {
    const codes = new Adapter('AuthorizationCode');
    const id = uniqueId('code');
    await codes.upsert(id, { grantId: 'g-1', accountId: 'acc' } as AdapterPayload, 60);
    expect((await codes.find(id))!.consumed).toBeUndefined();
    const before = Math.floor(Date.now() / 1000);
    await codes.consume(id);
    const after = Math.ceil(Date.now() / 1000);
    const consumed = (await codes.find(id))!.consumed as number;
    expect(Number.isInteger(consumed)).toBe(true);
    expect(consumed).toBeGreaterThanOrEqual(before - 1);
    expect(consumed).toBeLessThanOrEqual(after + 1);
  });

  test('a second consume throws InvalidGrant and revokes the grant and its tokens, but not the interaction', async () => {
    const grantId = uniqueId('grant');
    const otherGrant = uniqueId('grant');
    const code = uniqueId('code');
    await new Adapter('Grant').upsert(grantId, { accountId: 'acc', jti: grantId } as AdapterPayload, 3600);
    await new Adapter('Grant').upsert(otherGrant, { accountId: 'acc', jti: otherGrant } as AdapterPayload, 3600);
    await new Adapter('AuthorizationCode').upsert(code, { grantId, accountId: 'acc' } as AdapterPayload, 60);
    await new Adapter('AccessToken').upsert('at-1', { grantId, accountId: 'acc' } as AdapterPayload, 3600);
    await new Adapter('RefreshToken').upsert('rt-1', { grantId, accountId: 'acc' } as AdapterPayload, 3600);
    await new Adapter('AuthorizationCode').upsert('code-2', { grantId, accountId: 'acc' } as AdapterPayload, 60);
    await new Adapter('Interaction').upsert('int-1', { grantId, uid: 'int-1' } as AdapterPayload, 3600);
    await new Adapter('Session').upsert('sess-1', { accountId: 'acc', uid: 'sess-uid' } as AdapterPayload, 3600);
    await new Adapter('AccessToken').upsert('at-other', { grantId: otherGrant, accountId: 'acc' } as AdapterPayload, 3600);

    const codes = new Adapter('AuthorizationCode');
    await codes.consume(code);
    // The first redemption changes nothing else.
    expect(await rowKeys()).toHaveLength(9);

    const error = await codes.consume(code).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(errors.InvalidGrant);
    expect((error as { error?: string }).error).toBe('invalid_grant');

    expect(await rowKeys()).toEqual(['AccessToken:at-other', `Grant:${otherGrant}`, 'Interaction:int-1', 'Session:sess-1'].sort());
  });

  test('consuming an unknown id throws InvalidGrant and deletes nothing', async () => {
    await new Adapter('AccessToken').upsert('at-keep', { grantId: 'g', accountId: 'acc' } as AdapterPayload, 3600);
    await expect(new Adapter('AuthorizationCode').consume('never-issued')).rejects.toBeInstanceOf(errors.InvalidGrant);
    expect(await rowKeys()).toEqual(['AccessToken:at-keep']);
  });

  // The provider revokes a grant's tokens model by model; each call takes them all (same end state,
  // one lock order for concurrent revocations), but never the grant's Interaction or Session.
  test('revokeByGrantId deletes every token of that grant and nothing else', async () => {
    const grantId = uniqueId('grant');
    await new Adapter('AccessToken').upsert('at-a', { grantId } as AdapterPayload, 3600);
    await new Adapter('AccessToken').upsert('at-b', { grantId } as AdapterPayload, 3600);
    await new Adapter('AccessToken').upsert('at-other', { grantId: 'other-grant' } as AdapterPayload, 3600);
    await new Adapter('RefreshToken').upsert('rt-a', { grantId } as AdapterPayload, 3600);
    await new Adapter('Interaction').upsert('int-a', { grantId } as AdapterPayload, 3600);
    await new Adapter('Session').upsert('sess-a', { grantId } as AdapterPayload, 3600);

    await new Adapter('AccessToken').revokeByGrantId(grantId);
    expect(await rowKeys()).toEqual(['AccessToken:at-other', 'Interaction:int-a', 'Session:sess-a']);

    await new Adapter('RefreshToken').revokeByGrantId(grantId);
    expect(await rowKeys()).toEqual(['AccessToken:at-other', 'Interaction:int-a', 'Session:sess-a']);
  });

  test('destroy removes one row of one model', async () => {
    await new Adapter('Session').upsert('shared-id', { uid: 's' } as AdapterPayload, 3600);
    await new Adapter('Interaction').upsert('shared-id', { uid: 'i' } as AdapterPayload, 3600);
    await new Adapter('Session').upsert('other', { uid: 'o' } as AdapterPayload, 3600);
    await new Adapter('Session').destroy('shared-id');
    expect(await new Adapter('Session').find('shared-id')).toBeUndefined();
    expect(await rowKeys()).toEqual(['Interaction:shared-id', 'Session:other']);
    await expect(new Adapter('Session').destroy('shared-id')).resolves.toBeUndefined();
  });

  test('of 20 concurrent consume calls on one id exactly one resolves', async () => {
    const id = uniqueId('code');
    const codes = new Adapter('AuthorizationCode');
    await codes.upsert(id, { accountId: 'acc' } as AdapterPayload, 60);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => codes.consume(id)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected).toHaveLength(19);
    for (const r of rejected) expect(r.reason).toBeInstanceOf(errors.InvalidGrant);
    expect((await codes.find(id))!.consumed).toEqual(expect.any(Number));
  });
});

describe('postgresAdapter within one request', () => {
  /** A grant, a session and a refresh token bound to both, as the provider writes them. */
  async function tokenFamily() {
    const ids = { grant: uniqueId('grant'), session: uniqueId('sess'), uid: uniqueId('uid'), token: uniqueId('rt') };
    await new Adapter('Grant').upsert(ids.grant, { accountId: 'a1', clientId: 'c1' } as AdapterPayload, 3600);
    await new Adapter('Session').upsert(ids.session, { uid: ids.uid, accountId: 'a1' } as AdapterPayload, 3600);
    await new Adapter('RefreshToken').upsert(ids.token, { grantId: ids.grant, sessionUid: ids.uid, accountId: 'a1' } as AdapterPayload, 3600);
    return ids;
  }
  const deleteRow = (model: string, id: string) => db.deleteFrom('oidc_payload').where('model', '=', model).where('id', '=', id).execute();

  test('reading a token brings its grant and session along: later reads in the request need no query', async () => {
    const ids = await tokenFamily();
    await inRequestMemo(async () => {
      expect(await new Adapter('RefreshToken').find(ids.token)).toMatchObject({ grantId: ids.grant });
      // Gone from the table, yet still answered: these come from the token's round trip.
      await deleteRow('Grant', ids.grant);
      await deleteRow('Session', ids.session);
      expect(await new Adapter('Grant').find(ids.grant)).toMatchObject({ accountId: 'a1' });
      expect(await new Adapter('Session').findByUid(ids.uid)).toMatchObject({ accountId: 'a1' });
    });
    // The next request reads the table again.
    await inRequestMemo(async () => {
      expect(await new Adapter('Grant').find(ids.grant)).toBeUndefined();
      expect(await new Adapter('Session').findByUid(ids.uid)).toBeUndefined();
    });
  });

  test("reading a token brings its account's row along for the token gate, typed as a read of the account table would be", async () => {
    const account = await db
      .insertInto('account')
      .values({
        common_id: uniqueId('c').slice(0, 20),
        name: 'Token Holder',
        email: null,
        affiliation: 'staff',
        status: 'active',
        password_hash: 'x',
        password_set_at: new Date(),
        must_change_password: false,
        updated_at: new Date(),
      } as never)
      .returningAll()
      .executeTakeFirstOrThrow();
    const token = uniqueId('at');
    await new Adapter('AccessToken').upsert(token, { accountId: account.id, clientId: 'c1' } as AdapterPayload, 3600);
    const stranger = uniqueId('at');
    await new Adapter('AccessToken').upsert(stranger, { accountId: 'not-a-uuid', clientId: 'c1' } as AdapterPayload, 3600);
    await inRequestMemo(async () => {
      await new Adapter('AccessToken').find(token);
      await new Adapter('AccessToken').find(stranger);
      expect(await recalled(tokenAccountMemoKey(account.id))).toEqual(account);
      expect(recalled(tokenAccountMemoKey('not-a-uuid'))).toBeUndefined();
    });
    // Outside that request nothing is remembered.
    await inRequestMemo(async () => expect(recalled(tokenAccountMemoKey(account.id))).toBeUndefined());
  });

  test('a write through the adapter or the payload store makes the next read go to the table', async () => {
    const ids = await tokenFamily();
    await inRequestMemo(async () => {
      await new Adapter('RefreshToken').find(ids.token);
      await new Adapter('Session').upsert(ids.session, { uid: ids.uid, accountId: 'a1', touched: 1 } as AdapterPayload, 3600);
      expect(await new Adapter('Session').findByUid(ids.uid)).toMatchObject({ touched: 1 });
      await new Adapter('RefreshToken').consume(ids.token);
      expect((await new Adapter('RefreshToken').find(ids.token))?.consumed).toEqual(expect.any(Number));
      await new OidcPayloadStore(db).revokeAccount('a1');
      expect(await new Adapter('Grant').find(ids.grant)).toBeUndefined();
      expect(await new Adapter('RefreshToken').find(ids.token)).toBeUndefined();
    });
  });

  test('every caller gets a copy of its own, and a token without grant or session still reads', async () => {
    const ids = await tokenFamily();
    const lone = uniqueId('at');
    await new Adapter('AccessToken').upsert(lone, { accountId: 'a2', grantId: uniqueId('missing') } as AdapterPayload, 3600);
    await inRequestMemo(async () => {
      const first = await new Adapter('Grant').find(ids.grant);
      first!.accountId = 'changed by the caller';
      expect(await new Adapter('Grant').find(ids.grant)).toMatchObject({ accountId: 'a1' });
      expect(await new Adapter('AccessToken').find(lone)).toMatchObject({ accountId: 'a2' });
      expect(await new Adapter('AccessToken').find(uniqueId('nothing'))).toBeUndefined();
    });
  });
});

describe('OidcPayloadStore', () => {
  let store: OidcPayloadStore;
  beforeAll(() => {
    store = new OidcPayloadStore(db);
  });

  test('deleteExpired removes at most `limit` expired rows per call and never live ones', async () => {
    await insertRows(25, { expired: true });
    await insertRows(10, { expired: false });
    await new Adapter('Grant').upsert('never-expires', { accountId: 'a' } as AdapterPayload, 0);

    expect(await store.deleteExpired(10)).toBe(10);
    expect(await countRows()).toEqual({ expired: 15, live: 11 });
    expect(await store.deleteExpired(10)).toBe(10);
    expect(await store.deleteExpired(10)).toBe(5);
    expect(await store.deleteExpired(10)).toBe(0);
    expect(await countRows()).toEqual({ expired: 0, live: 11 });
    expect(await new Adapter('Grant').find('never-expires')).toEqual({ accountId: 'a' });
  });

  test("revokeAccount removes the account's sessions, grants and tokens, and leaves another account's", async () => {
    const grantA = uniqueId('grant-a');
    const grantB = uniqueId('grant-b');
    await new Adapter('Session').upsert('sess-a', { accountId: 'alice', uid: 'ua' } as AdapterPayload, 3600);
    await new Adapter('Grant').upsert(grantA, { accountId: 'alice' } as AdapterPayload, 3600);
    await new Adapter('AccessToken').upsert('at-a', { accountId: 'alice', grantId: grantA } as AdapterPayload, 3600);
    await new Adapter('RefreshToken').upsert('rt-a', { accountId: 'alice', grantId: grantA } as AdapterPayload, 3600);
    // A token row that carries only the grant id is found through the grant.
    await new Adapter('AuthorizationCode').upsert('code-a', { grantId: grantA } as AdapterPayload, 60);

    await new Adapter('Session').upsert('sess-b', { accountId: 'bob', uid: 'ub' } as AdapterPayload, 3600);
    await new Adapter('Grant').upsert(grantB, { accountId: 'bob' } as AdapterPayload, 3600);
    await new Adapter('AccessToken').upsert('at-b', { accountId: 'bob', grantId: grantB } as AdapterPayload, 3600);
    await new Adapter('RefreshToken').upsert('rt-b', { accountId: 'bob', grantId: grantB } as AdapterPayload, 3600);

    expect(await store.revokeAccount('alice')).toBe(5);
    expect(await rowKeys()).toEqual(['AccessToken:at-b', `Grant:${grantB}`, 'RefreshToken:rt-b', 'Session:sess-b'].sort());
    expect(await store.revokeAccount('nobody')).toBe(0);
    expect(await rowKeys()).toHaveLength(4);
  });

  test('a session or grant written back after revokeAccount is dead when it began before, alive when after (every read path)', async () => {
    const account = await db
      .insertInto('account')
      .values({
        common_id: String(Date.now()).slice(-10),
        name: 'Written Back',
        email: null,
        status: 'active',
        affiliation: 'student',
        password_hash: 'x',
        password_set_at: new Date(),
        must_change_password: false,
        updated_at: new Date(),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const now = Math.floor(Date.now() / 1000);
    const family = async (begun: number) => {
      const ids = { session: uniqueId('sess'), uid: uniqueId('uid'), grant: uniqueId('grant'), token: uniqueId('rt') };
      await new Adapter('Session').upsert(ids.session, { accountId: account.id, uid: ids.uid, loginTs: begun } as AdapterPayload, 3600);
      await new Adapter('Grant').upsert(ids.grant, { accountId: account.id, iat: begun } as AdapterPayload, 3600);
      await new Adapter('RefreshToken').upsert(ids.token, { accountId: account.id, grantId: ids.grant, sessionUid: ids.uid } as AdapterPayload, 3600);
      return ids;
    };
    const before = await family(now - 60);
    await store.revokeAccount(account.id);
    expect(await rowKeys()).toEqual([]);
    // Written back by requests that loaded them before the end, and a sign-in made after it.
    const writtenBack = await family(now - 60);
    expect(writtenBack).not.toEqual(before);
    const after = await family(now + 1);
    for (const [ids, alive] of [
      [writtenBack, false],
      [after, true],
    ] as const) {
      expect(Boolean(await new Adapter('Session').find(ids.session))).toBe(alive);
      expect(Boolean(await new Adapter('Session').findByUid(ids.uid))).toBe(alive);
      expect(Boolean(await new Adapter('Grant').find(ids.grant))).toBe(alive);
      // The token's read brings its grant and session along: the same rule applies there.
      await inRequestMemo(async () => {
        expect(await new Adapter('RefreshToken').find(ids.token)).toBeDefined();
        expect(Boolean(await new Adapter('Grant').find(ids.grant))).toBe(alive);
        expect(Boolean(await new Adapter('Session').findByUid(ids.uid))).toBe(alive);
      });
    }
  });
});

describe('Sweeper', () => {
  test('one sweep removes 2,500 expired rows in batches of 1000 and reports the count', async () => {
    const store = new OidcPayloadStore(db);
    await insertRows(2500, { expired: true });
    await insertRows(7, { expired: false });
    const batches: Array<{ asked: number; removed: number }> = [];
    const sweeper = new Sweeper(
      {
        oidc_payloads: async (n) => {
          const removed = await store.deleteExpired(n);
          batches.push({ asked: n, removed });
          return removed;
        },
      },
      1000,
    );
    expect(await sweeper.sweep()).toBe(2500);
    expect(batches).toEqual([
      { asked: 1000, removed: 1000 },
      { asked: 1000, removed: 1000 },
      { asked: 1000, removed: 500 },
    ]);
    expect(await countRows()).toEqual({ expired: 0, live: 7 });
    expect(await sweeper.sweep()).toBe(0);
  });

  test("a task that fails does not keep the later ones from their turn; its error is told with the task's name", async () => {
    const ran: string[] = [];
    const failing = new Error('the database is away');
    const sweeper = new Sweeper({
      first: async () => {
        ran.push('first');
        return 0;
      },
      broken: async () => {
        throw failing;
      },
      last: async () => {
        ran.push('last');
        return 0;
      },
    });
    const told: Array<[unknown, string]> = [];
    expect(await sweeper.sweep((error, task) => told.push([error, task]))).toBe(0);
    expect(ran).toEqual(['first', 'last']);
    expect(told).toEqual([[failing, 'broken']]);
    expect([...sweeper.lastSuccess().keys()]).toEqual(['first', 'last']);
    expect([...sweeper.lastFailure().keys()]).toEqual(['broken']);
    // Without a listener, the error is thrown once every task has had its turn.
    await expect(sweeper.sweep()).rejects.toBe(failing);
    expect(ran).toEqual(['first', 'last', 'first', 'last']);
  });

  test('a sweep is bounded by maxBatchesPerRun and runs every task', async () => {
    const store = new OidcPayloadStore(db);
    await insertRows(2500, { expired: true });
    let otherCalls = 0;
    const sweeper = new Sweeper(
      {
        oidc_payloads: (n) => store.deleteExpired(n),
        other: async () => {
          otherCalls += 1;
          return 3;
        },
      },
      1000,
      2,
    );
    expect(await sweeper.sweep()).toBe(2003);
    expect(otherCalls).toBe(1);
    expect(await countRows()).toEqual({ expired: 500, live: 0 });
  });
});
