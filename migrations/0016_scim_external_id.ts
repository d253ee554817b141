import type { Kysely } from 'kysely';

// Frozen once landed: later changes go into new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  // The feeding system's own identifier of the person (SCIM externalId, RFC 7643 3.1): kept as it
  // was sent so the system can find its records again; indexed for `filter=externalId eq "..."`.
  await db.schema.alterTable('account').addColumn('external_id', 'text').execute();
  await db.schema.createIndex('account_external_id_idx').on('account').column('external_id').execute();
  // SCIM lists accounts changed since a time (`meta.lastModified gt ...`), the way feeding systems sync.
  await db.schema.createIndex('account_updated_at_idx').on('account').columns(['updated_at', 'id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('account_updated_at_idx').execute();
  await db.schema.dropIndex('account_external_id_idx').execute();
  await db.schema.alterTable('account').dropColumn('external_id').execute();
}
