import { sql } from 'kysely';
import { MigrationError, migrateToLatest } from '../../src/db/migrator.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

// A start whose migrations are all applied skips kysely's Migrator (one read instead); whatever
// else it finds still goes to the Migrator, which applies or refuses as before.
describe('migrateToLatest', () => {
  let handle: TestDatabase;
  beforeAll(async () => {
    handle = await createTestDatabase();
  });
  afterAll(async () => {
    await handle.database.close();
  });

  const migrationTable = () => sql.table(handle.schema ? `${handle.schema}.kysely_migration` : 'kysely_migration');

  test('an up-to-date database applies nothing and records nothing', async () => {
    const before = await sql<{ n: string }>`select count(*) as n from ${migrationTable()}`.execute(handle.database.db);
    expect(await migrateToLatest(handle.database.db, handle.schema)).toEqual([]);
    const after = await sql<{ n: string }>`select count(*) as n from ${migrationTable()}`.execute(handle.database.db);
    expect(after.rows[0]!.n).toBe(before.rows[0]!.n);
  });

  test('a database that ran a migration this code lacks (a newer Akamon) is refused, not treated as up to date', async () => {
    await sql`insert into ${migrationTable()} (name, timestamp) values ('9999_from_a_newer_akamon', ${new Date().toISOString()})`.execute(handle.database.db);
    const refused = migrateToLatest(handle.database.db, handle.schema);
    await expect(refused).rejects.toThrow(MigrationError);
    await expect(refused).rejects.toThrow(/9999_from_a_newer_akamon is missing/);
  });
});
