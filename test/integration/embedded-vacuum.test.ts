import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { vacuumEmbedded } from '../../src/db/embedded-vacuum.ts';
import { startAkamon } from '../support/akamon.ts';

// PGlite has no autovacuum workers: the sweeper does their work (src/db/embedded-vacuum.ts). Run on
// both databases: on a server the function does the same (the sweeper leaves it to autovacuum).

let handle: TestDatabase;
let single: Database;

beforeAll(async () => {
  handle = await createTestDatabase();
  // One connection: the statistics a session writes are flushed by that session (on PGlite the only one).
  single = handle.url ? await openDatabase({ url: handle.url, schema: handle.schema, poolMax: 1 }) : handle.database;
});
afterAll(async () => {
  if (single !== handle.database) await single.close();
  await handle.database.close();
});

type TableStats = { dead: number; vacuumed: boolean; bytes: number };

async function statsOf(table: string): Promise<TableStats> {
  await sql`select pg_stat_force_next_flush()`.execute(single.db);
  const { rows } = await sql<TableStats>`
    select s.n_dead_tup::int as dead, s.last_vacuum is not null as vacuumed, pg_relation_size(s.relid)::int as bytes
    from pg_stat_user_tables s where s.relname = ${table} and s.schemaname = any(current_schemas(false))`.execute(single.db);
  return rows[0]!;
}

/** Statistics reach the views once the session has flushed them: asked again until `ready` says they have. */
async function statsWhen(table: string, ready: (stats: TableStats) => boolean): Promise<TableStats> {
  let stats = await statsOf(table);
  for (let tries = 0; tries < 40 && !ready(stats); tries += 1) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    stats = await statsOf(table);
  }
  return stats;
}

test('tables whose rows ended are vacuumed: their dead rows are gone and their emptied pages given back', async () => {
  // Two thousand sign-in states begun and ended, as the sweeper ends them.
  await sql`insert into interaction_state (uid, data, expires_at) select 'vacuum-' || g, jsonb_build_object('pad', repeat('x', 400)), now() from generate_series(1, 2000) g`.execute(single.db);
  await sql`delete from interaction_state where uid like 'vacuum-%'`.execute(single.db);
  const before = await statsWhen('interaction_state', (s) => s.dead >= 2000);
  expect(before.dead).toBeGreaterThanOrEqual(2000);
  expect(before.bytes).toBeGreaterThan(0);

  expect(await vacuumEmbedded(single.db, 100)).toBeGreaterThanOrEqual(1);
  const after = await statsWhen('interaction_state', (s) => s.vacuumed);
  expect(after.vacuumed).toBe(true);
  // On a server, another session's open snapshot (another test file's) may keep the dead rows a
  // while longer; the embedded database has no other session.
  if (handle.url) return;
  expect(after).toMatchObject({ dead: 0, bytes: 0 });
  // Nothing is due any more: a second run vacuums nothing.
  expect(await vacuumEmbedded(single.db, 100)).toBe(0);
});

test('a table whose name needs quoting is vacuumed as itself', async () => {
  // Not dropped afterwards: dropping a table while another file's migrator introspects every
  // schema fails that migration (test/support/database.ts); the file's schema goes as a whole.
  await sql`create table "Odd.Name" (id int primary key, pad text)`.execute(single.db);
  await sql`insert into "Odd.Name" select g, repeat('x', 200) from generate_series(1, 500) g`.execute(single.db);
  await sql`delete from "Odd.Name"`.execute(single.db);
  await statsWhen('Odd.Name', (s) => s.dead >= 500);
  expect(await vacuumEmbedded(single.db, 100)).toBeGreaterThanOrEqual(1);
  expect((await statsWhen('Odd.Name', (s) => s.vacuumed)).vacuumed).toBe(true);
});

test("the sweeper does it on the embedded database only: a server's autovacuum does its own", async () => {
  const akamon = await startAkamon();
  try {
    await akamon.akamon.sweeper.sweep();
    expect(akamon.akamon.sweeper.lastSuccess().has('embedded_vacuum')).toBe(akamon.deps.database.kind === 'pglite');
  } finally {
    await akamon.close();
  }
});
