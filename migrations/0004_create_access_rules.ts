import { sql, type Kysely } from 'kysely';

// Frozen once landed: later changes go into new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  // Who may use a client. Null affiliations means everyone; only active accounts by default.
  await db.schema.alterTable('client').addColumn('allowed_affiliations', sql`text[]`).execute();
  await db.schema.alterTable('client').addColumn('allowed_statuses', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{active}'`)).execute();
  await db.schema.alterTable('client').addColumn('require_education', 'boolean', (c) => c.notNull().defaultTo(false)).execute();
  // The public service directory: which clients are listed, with a description and a link.
  await db.schema.alterTable('client').addColumn('listed', 'boolean', (c) => c.notNull().defaultTo(false)).execute();
  await db.schema.alterTable('client').addColumn('description', 'text').execute();
  await db.schema.alterTable('client').addColumn('homepage_url', 'text').execute();

  // Explicit allow and deny lists of Common IDs per client (deny wins over everything).
  await db.schema.createTable('client_account_rule')
    .addColumn('client_id', 'text', (c) => c.notNull().references('client.client_id').onDelete('cascade'))
    .addColumn('common_id', 'text', (c) => c.notNull())
    .addColumn('effect', 'text', (c) => c.notNull().check(sql`effect in ('allow','deny')`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('client_account_rule_pk', ['client_id', 'common_id'])
    .execute();

  // The yearly information-security education: one row per account and academic year passed.
  await db.schema.createTable('security_education')
    .addColumn('account_id', 'uuid', (c) => c.notNull().references('account.id').onDelete('cascade'))
    .addColumn('academic_year', 'integer', (c) => c.notNull())
    .addColumn('passed_on', 'date', (c) => c.notNull())
    .addColumn('recorded_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('security_education_pk', ['account_id', 'academic_year'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('security_education').ifExists().execute();
  await db.schema.dropTable('client_account_rule').ifExists().execute();
  for (const column of ['homepage_url', 'description', 'listed', 'require_education', 'allowed_statuses', 'allowed_affiliations']) {
    await db.schema.alterTable('client').dropColumn(column).execute();
  }
}
