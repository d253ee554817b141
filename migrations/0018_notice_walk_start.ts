import type { Kysely } from 'kysely';

// Frozen once landed: later changes go into new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  // The MFA-date notice walks accounts in id order; accounts created once the walk has passed their
  // id are found by when they were created, from when the occasion's first notice was recorded.
  await db.schema.createIndex('notice_kind_occasion_created_idx').on('notice').columns(['kind', 'occasion', 'created_at']).execute();
  await db.schema.createIndex('account_created_at_idx').on('account').column('created_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('account_created_at_idx').execute();
  await db.schema.dropIndex('notice_kind_occasion_created_idx').execute();
}
