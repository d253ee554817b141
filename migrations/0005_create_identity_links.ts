import { sql, type Kysely } from 'kysely';

// Frozen once landed: later changes go into new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  // A person's link to the upstream identity provider (the national ID card app): only the
  // pairwise identifier it gives Akamon and the name as it gave it. One link per account, and
  // one account per identifier.
  await db.schema.createTable('identity_link')
    .addColumn('account_id', 'uuid', (c) => c.primaryKey().references('account.id').onDelete('cascade'))
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('linked_at', 'timestamptz', (c) => c.notNull())
    .addUniqueConstraint('identity_link_subject_key', ['issuer', 'subject'])
    .execute();

  // Revocation at a set time (graduation, end of contract), and when it happened: the data
  // salvage period counts from it.
  await db.schema.alterTable('account').addColumn('revoke_at', 'timestamptz').execute();
  await db.schema.alterTable('account').addColumn('revoke_reason', 'text').execute();
  await db.schema.alterTable('account').addColumn('revoked_at', 'timestamptz').execute();
  await sql`create index account_revoke_at_idx on account (revoke_at) where revoke_at is not null`.execute(db);

  // Clients that revoked accounts may reach through identity verification, for a while (data export).
  await db.schema.alterTable('client').addColumn('salvage', 'boolean', (c) => c.notNull().defaultTo(false)).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('client').dropColumn('salvage').execute();
  await sql`drop index if exists account_revoke_at_idx`.execute(db);
  for (const column of ['revoked_at', 'revoke_reason', 'revoke_at']) await db.schema.alterTable('account').dropColumn(column).execute();
  await db.schema.dropTable('identity_link').ifExists().execute();
}
