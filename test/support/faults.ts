import { sql, type Kysely } from 'kysely';
import type { DB } from '../../src/db/schema.ts';

/**
 * A fault at an exact step of a transaction: until the returned function is called, the database
 * refuses every `on` of `table` for which `when` holds (SQL over `new` and `old`), by default as a
 * statement timeout would (57014, which Akamon answers as "unavailable, try again"); `sqlState`
 * P0001 is an error of that one statement.
 */
export async function refuseWrites(db: Kysely<DB>, name: string, spec: { table: string; on: 'insert' | 'update'; when: string; sqlState?: string }): Promise<() => Promise<void>> {
  await sql
    .raw(
      `create function ${name}() returns trigger language plpgsql as $$ begin
         if ${spec.when} then raise exception 'stalled by the test' using errcode = '${spec.sqlState ?? '57014'}'; end if;
         return new; end $$;
       create trigger ${name} before ${spec.on} on ${spec.table} for each row execute function ${name}();`,
    )
    .execute(db);
  return async () => {
    await sql.raw(`drop trigger if exists ${name} on ${spec.table}; drop function if exists ${name}();`).execute(db);
  };
}
