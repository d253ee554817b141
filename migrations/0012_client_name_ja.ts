import type { Kysely } from 'kysely';

// Frozen once landed: later changes go into new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  // A system's name in Japanese, for Japanese pages (null: the name is used in both languages).
  await db.schema.alterTable('client').addColumn('name_ja', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('client').dropColumn('name_ja').execute();
}
