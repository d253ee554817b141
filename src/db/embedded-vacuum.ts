import { sql, type Kysely } from 'kysely';
import type { DB } from './schema.ts';

/**
 * PostgreSQL's own autovacuum settings, which this takes over: a table is vacuumed once its dead
 * rows pass 50 + 20% of its live ones, analysed once its changes pass 50 + 10%, and frozen (by the
 * same VACUUM, which turns aggressive past vacuum_freeze_table_age) once its oldest transaction ID
 * is 200 million transactions old.
 */
const VACUUM = { threshold: 50, scale: 0.2 };
const ANALYZE = { threshold: 50, scale: 0.1 };
const FREEZE_MAX_AGE = 200_000_000;

/**
 * Autovacuum's work for the embedded database. PGlite runs PostgreSQL as one session, without the
 * background workers a server has: every token, interaction and throttle counter that ends would
 * stay behind as a dead row, tables and indexes would only grow, and after some two billion
 * transactions the database would refuse writes to protect itself (transaction ID wraparound).
 * Run by the sweeper on PGlite only: vacuums (and analyses) up to `limit` of Akamon's tables (those
 * of its search path) that are due,
 * most dead rows first, one statement each, so that no single pause of the one connection is long;
 * the whole database (its catalogues too) once the oldest transaction ID anywhere is due for
 * freezing. Answers how many tables it vacuumed.
 */
export async function vacuumEmbedded(db: Kysely<DB>, limit: number): Promise<number> {
  const { rows } = await sql<{ schema: string; table: string }>`
    select s.schemaname as schema, s.relname as table
    from pg_stat_user_tables s join pg_class c on c.oid = s.relid
    where s.schemaname = any(current_schemas(false))
      and (s.n_dead_tup > ${VACUUM.threshold}::float8 + ${VACUUM.scale}::float8 * s.n_live_tup
       or s.n_mod_since_analyze > ${ANALYZE.threshold}::float8 + ${ANALYZE.scale}::float8 * s.n_live_tup
       or age(c.relfrozenxid) > ${FREEZE_MAX_AGE}::int)
    order by s.n_dead_tup desc
    limit ${limit}`.execute(db);
  for (const { schema, table } of rows) await sql`vacuum (analyze) ${sql.table(`${schema}.${table}`)}`.execute(db);
  const [database] = (await sql<{ age: number }>`select age(datfrozenxid) as age from pg_database where datname = current_database()`.execute(db)).rows;
  if (database && database.age > FREEZE_MAX_AGE) await sql`vacuum`.execute(db);
  return rows.length;
}
