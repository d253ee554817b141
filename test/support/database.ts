import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { migrateToLatest, migrationFolder } from '../../src/db/migrator.ts';

/** The real Postgres to test against, when CI (or a developer) provides one. */
export const testDatabaseUrl = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL || undefined;

export interface TestDatabase {
  database: Database;
  /** Postgres schema of this handle (real Postgres only). */
  schema?: string;
  url?: string;
}

function snapshotFile(): string {
  const hash = crypto.createHash('sha256');
  for (const name of fs.readdirSync(migrationFolder).sort()) hash.update(name).update(fs.readFileSync(path.join(migrationFolder, name)));
  const version = JSON.parse(fs.readFileSync(new URL('../../node_modules/@electric-sql/pglite/package.json', import.meta.url), 'utf8')).version;
  return path.join(os.tmpdir(), `akamon-pglite-${version}-${hash.digest('hex').slice(0, 16)}.tar`);
}

/**
 * A migrated, empty database of its own for each test file: a schema on the real Postgres when
 * TEST_DATABASE_URL is set, otherwise an in-memory PGlite restored from a cached migrated dump
 * (creating PGlite from nothing costs seconds; restoring costs about one).
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (testDatabaseUrl) {
    // When it was made, in the name: the global setup drops only schemas old enough to be no live run's.
    const schema = `test_${Date.now().toString(36)}_${crypto.randomBytes(4).toString('hex')}`;
    const admin = await openDatabase({ url: testDatabaseUrl, poolMax: 1 });
    await sql.raw(`create schema ${schema}`).execute(admin.db);
    await admin.close();
    const database = await openDatabase({ url: testDatabaseUrl, schema });
    await migrateToLatest(database.db, schema);
    // The schema is left in place: dropping it while another file's migrator introspects every
    // schema makes that file fail. The global setup drops earlier runs' schemas instead.
    return { schema, url: testDatabaseUrl, database };
  }
  const file = snapshotFile();
  if (fs.existsSync(file)) {
    return { database: await openDatabase({ loadDataDir: new Blob([fs.readFileSync(file)]) }) };
  }
  const database = await openDatabase({});
  await migrateToLatest(database.db);
  const dump = Buffer.from(await (await database.dump!()).arrayBuffer());
  const temporary = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
  fs.writeFileSync(temporary, dump);
  fs.renameSync(temporary, file); // atomic: parallel workers never read a half-written dump
  return { database };
}
