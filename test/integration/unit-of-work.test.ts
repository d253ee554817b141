import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { afterUnitCommits, afterUnitOfWork, isUnavailable } from '../../src/db/driver.ts';
import { DatabaseUnavailableError } from '../../src/shared/errors.ts';
import { HeldWrites, holdWrite, inOneStatement } from '../../src/db/one-statement.ts';
import { PREPARED_MARK, prepared } from '../../src/db/prepared.ts';
import { compiledOnce } from '../../src/db/compiled-once.ts';
import { openDatabase } from '../../src/db/database.ts';

// The driver's unit of work (src/db/driver.ts), on both databases: what the token endpoint's
// all-or-nothing promise (issue 12 point 4) stands on.

let handle: TestDatabase;
const db = () => handle.database.db;
const note = (id: string) => sql`insert into interaction_state (uid, data, expires_at) values (${id}, '{}'::jsonb, now() + interval '1 hour')`.execute(db());
const exists = async (id: string) => (await db().selectFrom('interaction_state').select('uid').where('uid', '=', id).executeTakeFirst()) !== undefined;
let n = 0;
const id = () => `uow-${process.pid}-${++n}`;

// A lock wait that timed out (55P03): unavailable, and the transaction is aborted.
const lockTimeout = sql`do $$ begin raise exception 'injected lock timeout' using errcode = '55P03'; end $$`;
/** A transaction inside the unit (a savepoint) whose work swallows that fault. */
const swallowedInSavepoint = () =>
  db()
    .transaction()
    .execute(async (trx) => {
      await lockTimeout.execute(trx).catch(() => undefined);
    });

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

  test('after a fault aborts its transaction, the unit answers that fault for every later statement without sending it, until a rollback to a savepoint', async () => {
    const later = id();
    const counts = () => ({ ...handle.database.stats().queryErrors, sent: handle.database.stats().queries });
    let before = counts();
    const answers: unknown[] = [];
    const unit = handle.database.unitOfWork(
      async () => {
        answers.push(await lockTimeout.execute(db()).catch((error: unknown) => error));
        answers.push(await note(later).catch((error: unknown) => error));
      },
      () => false,
    );
    await expect(unit).rejects.toBeInstanceOf(DatabaseUnavailableError);
    expect(answers[0]).toBeInstanceOf(DatabaseUnavailableError);
    // The same error, and not sent: the statement count moved by begin, the fault and rollback only.
    expect(answers[1]).toBe(answers[0]);
    expect(counts()).toEqual({ unavailable: before.unavailable + 1, statement: before.statement, sent: before.sent + 3 });
    // Inside a savepoint the fault is undone by its rollback, and the unit goes on.
    before = counts();
    await handle.database.unitOfWork(
      async () => {
        await expect(
          db()
            .transaction()
            .execute((trx) => lockTimeout.execute(trx)),
        ).rejects.toBeInstanceOf(DatabaseUnavailableError);
        await note(later);
      },
      () => true,
    );
    expect(await exists(later)).toBe(true);
    expect(counts().statement).toBe(before.statement);
  });

  test('a fault the work swallowed is still the answer: inside a savepoint (its release refused, its rollback sent) and at the unit, which keeps nothing', async () => {
    const [inSavepoint, inUnit] = [id(), id()];
    const before = handle.database.stats().queryErrors.statement;
    await expect(handle.database.unitOfWork(swallowedInSavepoint, () => true)).rejects.toBeInstanceOf(DatabaseUnavailableError);
    await expect(
      handle.database.unitOfWork(
        async () => {
          await note(inUnit);
          await lockTimeout.execute(db()).catch(() => undefined);
        },
        () => true,
      ),
    ).rejects.toBeInstanceOf(DatabaseUnavailableError);
    await expect(
      handle.database.unitOfWork(
        async () => {
          await note(inSavepoint);
          await swallowedInSavepoint().catch(() => undefined);
          await note(id());
        },
        () => true,
      ),
    ).resolves.toBeUndefined();
    // The savepoint's rollback made the unit usable again, and it kept what it did outside it.
    expect([await exists(inSavepoint), await exists(inUnit)]).toEqual([true, false]);
    expect(handle.database.stats().queryErrors.statement).toBe(before);
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

  test('each piece of deferred work runs though one before it failed, and the first failure is the answer', async () => {
    const ran: string[] = [];
    const unit = handle.database.unitOfWork(
      async () => {
        await afterUnitOfWork(async () => {
          throw new Error('the first failed');
        });
        await afterUnitCommits(async () => {
          ran.push('second');
        });
      },
      () => true,
    );
    await expect(unit).rejects.toThrow('the first failed');
    expect(ran).toEqual(['second']);
  });

  test('work deferred until the unit commits runs after a commit, and not after a rollback or a throw', async () => {
    const told: string[] = [];
    const unit = (name: string, keep: boolean, fail = false) =>
      handle.database.unitOfWork(
        async () => {
          await note(id());
          await afterUnitCommits(async () => {
            told.push(name);
          });
          if (fail) throw new Error('the work failed');
        },
        () => keep,
      );
    await unit('committed', true);
    await unit('rolled back', false);
    await expect(unit('thrown', true, true)).rejects.toThrow('the work failed');
    expect(told).toEqual(['committed']);
    // Outside a unit it runs at once.
    await afterUnitCommits(async () => {
      told.push('no unit');
    });
    expect(told).toEqual(['committed', 'no unit']);
  });

  // Found by a read of the mechanism: a savepoint's rollback undid its changes but not the telling of them.
  test('work deferred until the commit inside a savepoint that rolls back does not run; what was deferred outside it does', async () => {
    const told: string[] = [];
    const tellWhenCommitted = (name: string) =>
      afterUnitCommits(async () => {
        told.push(name);
      });
    await handle.database.unitOfWork(async () => {
      await tellWhenCommitted('before');
      await expect(
        db()
          .transaction()
          .execute(async (trx) => {
            await sql`select 1`.execute(trx);
            await tellWhenCommitted('rolled back');
            await afterUnitOfWork(async () => {
              told.push('in any case');
            });
            throw new Error('inner failure');
          }),
      ).rejects.toThrow('inner failure');
      await db()
        .transaction()
        .execute(async (trx) => {
          await sql`select 1`.execute(trx);
          await tellWhenCommitted('released');
        });
      await tellWhenCommitted('after');
    });
    expect(told.sort()).toEqual(['after', 'before', 'in any case', 'released']);
  });

  test('a keep that throws rolls the unit back before its connection is lent again', async () => {
    const written = id();
    const unit = handle.database.unitOfWork(
      () => note(written),
      () => {
        throw new Error('keep failed');
      },
    );
    await expect(unit).rejects.toThrow('keep failed');
    // The next borrower (on PGlite the one session there is) is outside any transaction and sees nothing of it.
    const [state] = (await sql<{ open: boolean }>`select txid_current_if_assigned() is not null as open`.execute(db())).rows;
    expect(state!.open).toBe(false);
    expect(await exists(written)).toBe(false);
  });

  test('a COMMIT whose answer was lost may have committed: work waiting for the commit is done', async () => {
    if (!handle.url) return; // PGlite's session cannot be ended from inside.
    const written = id();
    // A deferred trigger ends the session during the COMMIT itself, before it can answer.
    await sql
      .raw(
        `create function end_session_at_commit() returns trigger language plpgsql as $$ begin
           if new.uid = '${written}' then perform pg_terminate_backend(pg_backend_pid()); end if; return null; end $$;
         create constraint trigger end_session_at_commit after insert on interaction_state deferrable initially deferred
           for each row execute function end_session_at_commit();`,
      )
      .execute(db());
    try {
      let told = false;
      const unit = handle.database.unitOfWork(
        async () => {
          await note(written);
          await afterUnitCommits(async () => {
            told = true;
          });
        },
        () => true,
      );
      await expect(unit).rejects.toBeInstanceOf(DatabaseUnavailableError);
      expect(told).toBe(true);
    } finally {
      await sql.raw('drop trigger end_session_at_commit on interaction_state; drop function end_session_at_commit();').execute(db());
    }
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

describe('connections', () => {
  test('a statement the database cancelled or timed out is answered as busy, and its connection goes on: the next statement runs on it, in a unit of work or not', async () => {
    // One connection: on PGlite, the only session there is.
    const single = handle.url ? await openDatabase({ url: handle.url, schema: handle.schema, poolMax: 1 }) : handle.database;
    const backend = async () => (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(single.db)).rows[0]!.pid;
    const fault = (sqlState: string) => sql`do $$ begin raise exception 'injected' using errcode = ${sql.lit(sqlState)}; end $$`;
    try {
      const pid = await backend();
      // statement_timeout's cancel, lock_timeout, a deadlock's victim: each alone and inside a unit of work.
      for (const sqlState of ['57014', '55P03', '40P01']) {
        await expect(fault(sqlState).execute(single.db)).rejects.toBeInstanceOf(DatabaseUnavailableError);
        expect(await backend()).toBe(pid);
        // Work deferred by the unit runs the moment its connection is back (a replayed grant's revocation).
        let deferred: Promise<unknown> | undefined;
        const unit = single.unitOfWork(
          async () => {
            await afterUnitOfWork(async () => {
              deferred = backend();
            });
            await fault(sqlState).execute(single.db);
          },
          () => true,
        );
        await expect(unit).rejects.toBeInstanceOf(DatabaseUnavailableError);
        await expect(deferred).resolves.toBe(pid);
        expect(await backend()).toBe(pid);
      }
      // A server that ended the session (an administrator's terminate): that connection is never lent again.
      if (handle.url) {
        await expect(fault('57P01').execute(single.db)).rejects.toBeInstanceOf(DatabaseUnavailableError);
        expect(await backend()).not.toBe(pid);
      }
    } finally {
      if (single !== handle.database) await single.close();
    }
  });
});

describe('prepared statements', () => {
  test('a marked statement is prepared once per session, answers for every value, and runs from one plan', async () => {
    const plusOne = (value: number) => prepared(sql<{ n: number }>`select ${value}::int + 1 as n`).execute(db());
    const answers = await handle.database.unitOfWork(
      async () => {
        const ns: number[] = [];
        for (let value = 0; value < 8; value += 1) ns.push((await plusOne(value * 10)).rows[0]!.n);
        const listed = await sql<{ generic_plans: string }>`select generic_plans from pg_prepared_statements where statement like ${`${PREPARED_MARK}%+ 1 as n`}`.execute(db());
        // One statement in this session, and PostgreSQL went on with its generic plan after the first five.
        expect(listed.rows).toHaveLength(1);
        expect(Number(listed.rows[0]!.generic_plans)).toBeGreaterThan(0);
        return ns;
      },
      () => true,
    );
    expect(answers).toEqual([1, 11, 21, 31, 41, 51, 61, 71]);
  });

  test("one whose table changed under it (another node's migration) is answered as busy once, in a unit of work or not, then prepared afresh on the same connection", async () => {
    // One connection, so that each read meets the statement the one before prepared.
    const single = handle.url ? await openDatabase({ url: handle.url, schema: handle.schema, poolMax: 1 }) : handle.database;
    const table = `prepared_probe_${process.pid}`;
    const read = () => prepared(sql<Record<string, number>>`select * from ${sql.table(table)}`).execute(single.db);
    const backend = async () => (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(single.db)).rows[0]!.pid;
    const inUnit = <T>(work: () => Promise<T>) => single.unitOfWork(work, () => true);
    try {
      await sql`create table ${sql.table(table)} (a int)`.execute(single.db);
      await sql`insert into ${sql.table(table)} values (1)`.execute(single.db);
      const pid = await backend();
      const unavailable = single.stats().queryErrors.unavailable;
      expect((await read()).rows).toEqual([{ a: 1 }]);
      await sql`alter table ${sql.table(table)} add column b int default 7`.execute(single.db);
      await expect(read()).rejects.toBeInstanceOf(DatabaseUnavailableError);
      expect((await read()).rows).toEqual([{ a: 1, b: 7 }]);
      // The same inside a unit of work (a token request): it ends, and the next unit commits on the same connection.
      await sql`alter table ${sql.table(table)} add column c int default 8`.execute(single.db);
      await expect(inUnit(read)).rejects.toBeInstanceOf(DatabaseUnavailableError);
      expect((await inUnit(read)).rows).toEqual([{ a: 1, b: 7, c: 8 }]);
      // Answered as busy, counted so, and the connection kept.
      expect(single.stats().queryErrors.unavailable - unavailable).toBe(2);
      expect(await backend()).toBe(pid);
    } finally {
      // The table stays with this file's schema: dropping it while another file's migrator
      // introspects every schema fails that migration (test/support/database.ts).
      if (single !== handle.database) await single.close();
    }
  });
});

describe('statements compiled once', () => {
  test('each run binds its own values to the text built at the first run; values written into the text stay; in a transaction too', async () => {
    let builds = 0;
    const sum = compiledOnce<{ a: number; b: number }, { total: number; label: string }>((bind) => {
      builds += 1;
      return sql`select ${bind('a')}::int + ${bind('b')}::int + ${100}::int as total, ${'fixed'}::text || ${bind('a')}::text as label`;
    });
    expect((await sum(db(), { a: 1, b: 2 })).rows).toEqual([{ total: 103, label: 'fixed1' }]);
    expect((await sum(db(), { a: 40, b: 2 })).rows).toEqual([{ total: 142, label: 'fixed40' }]);
    const inTransaction = await db()
      .transaction()
      .execute(async (trx) => (await sum(trx, { a: -100, b: 7 })).rows);
    expect(inTransaction).toEqual([{ total: 7, label: 'fixed-100' }]);
    expect(builds).toBe(1);
    // A bound name without a value is refused, not sent as NULL.
    await expect(sum(db(), { a: 1 } as never)).rejects.toThrow('no value for b');
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
