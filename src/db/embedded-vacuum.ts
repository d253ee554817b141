import { sql, type Kysely } from 'kysely';
import type { DB } from './schema.ts';

/**
 * PostgreSQL's own autovacuum settings, which this takes over: a table is vacuumed once its dead
 * rows pass 50 + 20% of its live ones, and frozen (by the same VACUUM, which turns aggressive past
 * vacuum_freeze_table_age) once its oldest transaction ID is 200 million transactions old.
 */
const VACUUM = { threshold: 50, scale: 0.2 };
const FREEZE_MAX_AGE = 200_000_000;

/**
 * Autovacuum's work for the embedded database. PGlite runs PostgreSQL as one session, without the
 * background workers a server has: every token, interaction and throttle counter that ends would
 * stay behind as a dead row and tables and indexes would only grow; and after some two billion
 * transactions old rows would seem to come from the future and vanish (transaction ID wraparound:
 * a server refuses writes before that, a single-user session does not). Run by the sweeper on
 * PGlite only: vacuums up to `limit` of Akamon's tables (those of its search path) that are due,
 * most dead rows first, one statement each; the whole database (its catalogues too) once its
 * oldest transaction ID is due for freezing. No ANALYZE: its sample would stay in PGlite's memory
 * (tens of MiB for a large table), and the embedded database has always planned without statistics.
 * A table whose vacuum fails does not keep the others from theirs. Answers how many it vacuumed.
 * While one runs, the one connection (and, PGlite being in-process, the event loop) waits for it:
 * milliseconds for tables of a campus's size.
 */
export async function vacuumEmbedded(db: Kysely<DB>, limit: number): Promise<number> {
  const { rows } = await sql<{ schema: string; table: string }>`
    select s.schemaname as schema, s.relname as table
    from pg_stat_user_tables s join pg_class c on c.oid = s.relid
    where s.schemaname = any(current_schemas(false)) and c.relkind = 'r'
      and (s.n_dead_tup > ${VACUUM.threshold}::float8 + ${VACUUM.scale}::float8 * s.n_live_tup or age(c.relfrozenxid) > ${FREEZE_MAX_AGE}::int)
    order by s.n_dead_tup desc
    limit ${limit}`.execute(db);
  let vacuumed = 0;
  let failure: { error: unknown } | undefined;
  const attempt = async (statement: ReturnType<typeof sql>) => {
    try {
      await statement.execute(db);
      return true;
    } catch (error) {
      failure ??= { error };
      return false;
    }
  };
  for (const { schema, table } of rows) if (await attempt(sql`vacuum ${sql.id(schema, table)}`)) vacuumed += 1;
  const [database] = (await sql<{ age: number }>`select age(datfrozenxid) as age from pg_database where datname = current_database()`.execute(db)).rows;
  if (database && database.age > FREEZE_MAX_AGE) await attempt(sql`vacuum`);
  if (failure) throw failure.error;
  return vacuumed;
}
