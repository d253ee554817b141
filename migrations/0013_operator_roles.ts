import { sql, type Kysely } from 'kysely';

// Frozen once landed: later changes go into new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  // API tokens get a role, a scope (departments, affiliations; empty = no limit), an expiry and
  // who made them. Tokens made before roles existed were all-powerful and stay so.
  await db.schema
    .alterTable('operator')
    .addColumn('role', 'text', (c) => c.notNull().defaultTo('admin'))
    .addColumn('departments', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('affiliations', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('expires_at', 'timestamptz')
    .addColumn('created_by', 'text')
    .addColumn('revoked_at', 'timestamptz')
    .execute();

  // People who may use the web console: one role per account, with the same scope columns.
  await db.schema
    .createTable('console_role')
    .addColumn('account_id', 'uuid', (c) => c.primaryKey().references('account.id').onDelete('cascade'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('departments', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('affiliations', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('granted_by', 'text', (c) => c.notNull())
    .addColumn('granted_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('console_role').execute();
  for (const column of ['role', 'departments', 'affiliations', 'expires_at', 'created_by', 'revoked_at']) {
    await db.schema.alterTable('operator').dropColumn(column).execute();
  }
}
