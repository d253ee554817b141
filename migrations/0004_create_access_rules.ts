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
  // MFA rollout at this client: a warning period, then enforcement.
  await db.schema.alterTable('client').addColumn('mfa_warning_from', 'timestamptz').execute();
  await db.schema.alterTable('client').addColumn('mfa_required_from', 'timestamptz').execute();
  // How often a person chose "later" on the rollout notice, and when last.
  await db.schema.alterTable('account').addColumn('mfa_postpone_count', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('account').addColumn('mfa_postponed_at', 'timestamptz').execute();

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
  await db.schema.alterTable('account').dropColumn('mfa_postponed_at').execute();
  await db.schema.alterTable('account').dropColumn('mfa_postpone_count').execute();
  for (const column of ['mfa_required_from', 'mfa_warning_from', 'homepage_url', 'description', 'listed', 'require_education', 'allowed_statuses', 'allowed_affiliations']) {
    await db.schema.alterTable('client').dropColumn(column).execute();
  }
}
