import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileMigrationProvider, Migrator, sql, type Kysely, type MigrationResultSet } from 'kysely';

export const migrationFolder = fileURLToPath(new URL('../../migrations', import.meta.url));

export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** The migrations kysely's FileMigrationProvider would import, by the names it records them under. */
async function migrationNames(): Promise<string[]> {
  const files = await fs.readdir(migrationFolder);
  return files.filter((name) => /\.(ts|mts|js|mjs)$/.test(name) && !/\.d\.m?ts$/.test(name)).map((name) => name.slice(0, name.lastIndexOf('.')));
}

/**
 * True when the database has run exactly the migrations in the folder: the usual start, which then
 * costs two small reads. kysely's Migrator would import every migration, read the whole catalogue twice
 * (its table-exists check) and take its lock only to find nothing to do. Anything else (a first
 * start, a new migration, a migration recorded that is not in the folder) goes to the Migrator,
 * which applies or refuses as always.
 */
// biome-ignore lint/suspicious/noExplicitAny: see migrateToLatest
async function upToDate(db: Kysely<any>, schema: string | undefined): Promise<boolean> {
  // Asked first rather than caught: a failed read would count as a failed statement in the metrics.
  const table = schema ? `"${schema}".kysely_migration` : 'kysely_migration';
  const { rows } = await sql<{ found: string | null }>`select to_regclass(${table}) as found`.execute(db);
  if (!rows[0]?.found) return false;
  const [files, applied] = await Promise.all([migrationNames(), (schema ? db.withSchema(schema) : db).selectFrom('kysely_migration').select('name').execute() as Promise<Array<{ name: string }>>]);
  const recorded = new Set(applied.map((row) => row.name));
  return recorded.size === files.length && files.every((name) => recorded.has(name));
}

/** Applies every pending migration; returns the names applied now. */
// biome-ignore lint/suspicious/noExplicitAny: migrations run on an untyped Kysely, as kysely's own guide does (they must not depend on today's schema types)
export async function migrateToLatest(db: Kysely<any>, schema?: string): Promise<string[]> {
  if (await upToDate(db, schema)) return [];
  const migrator = new Migrator({
    db,
    provider: new FileMigrationProvider({ fs, path, migrationFolder }),
    // The lock tables live in the same schema, or kysely would find another schema's.
    migrationTableSchema: schema,
  });
  const result: MigrationResultSet = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new MigrationError(`migration ${failed} failed: ${(result.error as Error).message ?? result.error}`);
  }
  return (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
