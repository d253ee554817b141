import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { afterUnitOfWork, isUnavailable } from '../../src/db/driver.ts';
import { DatabaseUnavailableError } from '../../src/shared/errors.ts';
import { HeldWrites, holdWrite, inOneStatement } from '../../src/db/one-statement.ts';
import { PREPARED_MARK, prepared } from '../../src/db/prepared.ts';
import { openDatabase } from '../../src/db/database.ts';

// The driver's unit of work (src/db/driver.ts), on both databases: what the token endpoint's
// all-or-nothing promise (issue 12 point 4) stands on.

let handle: TestDatabase;
const db = () => handle.database.db;
const note = (id: string) => sql`insert into interaction_state (uid, data, expires_at) values (${id}, '{}'::jsonb, now() + interval '1 hour')`.execute(db());
const exists = async (id: string) => (await db().selectFrom('interaction_state').select('uid').where('uid', '=', id).executeTakeFirst()) !== undefined;
let n = 0;
const id = () => `uow-${process.pid}-${++n}`;

beforeAll(async () => {
  handle = await createTestDatabase();
});
afterAll(async () => {
  await handle.database.close();
});

describe('unit of work', () => {
  test('commits what ran inside when kept, and nothing when not kept or when the work throws', async () => {
    const [kept, dropped, thrown] = [id(), id(), id()];
    await handle.database.unitOfWork(
      () => note(kept),
      () => true,
    );
    await handle.database.unitOfWork(
      () => note(dropped),
      () => false,
    );
    await expect(
      handle.database.unitOfWork(
        async () => {
          await note(thrown);
          throw new Error('the request failed');
        },
        () => true,
      ),
    ).rejects.toThrow('the request failed');
    expect([await exists(kept), await exists(dropped), await exists(thrown)]).toEqual([true, false, false]);
  });

  test("a transaction inside the unit is a savepoint: its rollback keeps the unit's other work", async () => {
    const [outer, inner] = [id(), id()];
    await handle.database.unitOfWork(
      async () => {
        await note(outer);
        await expect(
          db()
            .transaction()
            .execute(async (trx) => {
              await sql`insert into interaction_state (uid, data, expires_at) values (${inner}, '{}'::jsonb, now() + interval '1 hour')`.execute(trx);
              throw new Error('inner failure');
            }),
        ).rejects.toThrow('inner failure');
      },
      () => true,
    );
    expect([await exists(outer), await exists(inner)]).toEqual([true, false]);
  });

  test('deferred work runs after the unit ends, and stands even when the unit rolls back', async () => {
    const [inside, deferred] = [id(), id()];
    let ranInside = false;
    await handle.database.unitOfWork(
      async () => {
        await note(inside);
        await afterUnitOfWork(async () => {
          await note(deferred);
        });
        ranInside = await exists(deferred);
      },
      () => false,
    );
    expect(ranInside).toBe(false);
    expect([await exists(inside), await exists(deferred)]).toEqual([false, true]);
  });

  test('work the unit started but that queries only after it ended takes a connection of its own', async () => {
    const late = id();
    let straggler: Promise<unknown> | undefined;
    await handle.database.unitOfWork(
      async () => {
        straggler = new Promise((resolve) => setTimeout(resolve, 50)).then(() => note(late));
      },
      () => false,
    );
    await straggler;
    expect(await exists(late)).toBe(true);
  });
});

describe('prepared statements', () => {
  test('a marked statement is prepared once per connection and answers for every value', async () => {
    const plusOne = (value: number) => prepared(sql<{ n: number }>`select ${value}::int + 1 as n`).execute(db());
    const [first, second] = await handle.database.unitOfWork(
      async () => {
        const answers = [(await plusOne(1)).rows[0]!.n, (await plusOne(41)).rows[0]!.n];
        const listed = await sql<{ statement: string }>`select statement from pg_prepared_statements where statement like ${`${PREPARED_MARK}%`}`.execute(db());
        expect(listed.rows.filter((row) => row.statement.includes('+ 1 as n'))).toHaveLength(1);
        return answers;
      },
      () => true,
    );
    expect([first, second]).toEqual([2, 42]);
  });

  test("one whose table changed under it (another node's migration) is answered as busy once, then prepared afresh", async () => {
    // One connection, so that the second read meets the statement the first one prepared.
    const single = handle.url ? await openDatabase({ url: handle.url, schema: handle.schema, poolMax: 1 }) : handle.database;
    const table = `prepared_probe_${process.pid}`;
    const read = () => prepared(sql<Record<string, number>>`select * from ${sql.table(table)}`).execute(single.db);
    try {
      await sql`create table ${sql.table(table)} (a int)`.execute(single.db);
      await sql`insert into ${sql.table(table)} values (1)`.execute(single.db);
      expect((await read()).rows).toEqual([{ a: 1 }]);
      await sql`alter table ${sql.table(table)} add column b int default 7`.execute(single.db);
      await expect(read()).rejects.toBeInstanceOf(DatabaseUnavailableError);
      expect((await read()).rows).toEqual([{ a: 1, b: 7 }]);
    } finally {
      await sql`drop table if exists ${sql.table(table)}`.execute(single.db);
      if (single !== handle.database) await single.close();
    }
  });
});

describe('writes in one statement', () => {
  const insert = (uid: string) =>
    db()
      .insertInto('interaction_state')
      .values({ uid, data: '{}', expires_at: sql<Date>`now() + interval '1 hour'` as never });

  test('writes held by work are made with the closing statement, all of them or none', async () => {
    const [first, second, third] = [id(), id(), id()];
    const held = new HeldWrites();
    let late: Promise<boolean> | undefined;
    const answer = await held.run(async () => {
      expect(holdWrite(first, insert(first))).toBe(true);
      expect(holdWrite(second, insert(`${second}-saved-first`))).toBe(true);
      // The same row saved again: held once, as last saved.
      expect(holdWrite(second, insert(second))).toBe(true);
      // A task the work leaves running writes at once once the work has ended.
      late = new Promise((resolve) => setTimeout(() => resolve(holdWrite(third, insert(third))), 50));
      return 'done';
    });
    expect([answer, held.writes.length, await exists(first), await exists(second)]).toEqual(['done', 2, false, false]);
    expect(await late).toBe(false);
    await inOneStatement(held.writes).execute(db());
    expect([await exists(first), await exists(second), await exists(`${second}-saved-first`)]).toEqual([true, true, false]);
    // One of them fails (its row is there already): the other is not made either.
    await expect(inOneStatement([insert(third), insert(first)]).execute(db())).rejects.toThrow();
    expect(await exists(third)).toBe(false);
    // Outside such work nothing is held: the caller writes at once.
    expect(holdWrite(third, insert(third))).toBe(false);
  });
});

describe('what counts as unavailable', () => {
  test.each([
    ['57P01', true],
    ['08006', true],
    ['53300', true],
    ['57014', true],
    ['55P03', true],
    ['40P01', true],
    ['23505', false],
    ['42P01', false],
    ['22P02', false],
  ])('SQLSTATE %s -> %s', (code, expected) => {
    expect(isUnavailable({ code, message: 'x' })).toBe(expected);
  });

  test('socket and client failures are unavailable; the translated error says so', () => {
    expect(isUnavailable({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' })).toBe(true);
    expect(isUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isUnavailable(new Error('Query read timeout'))).toBe(true);
    expect(isUnavailable(new Error('syntax error at or near'))).toBe(false);
    expect(isUnavailable(new DatabaseUnavailableError(new Error('x'), 5))).toBe(true);
  });
});
