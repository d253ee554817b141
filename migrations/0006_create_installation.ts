import { sql, type Kysely } from 'kysely';

// Frozen once landed: later changes go into new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  // Facts about the installation as a whole, one row at most: the issuer the database serves. Nodes
  // of another issuer refuse to start on it (they would rewrite the account home's registration).
  // A database from before this table has no row; the first node that starts records its issuer.
  await db.schema.createTable('installation')
    .addColumn('singleton', 'boolean', (c) => c.primaryKey().defaultTo(true).check(sql`singleton`))
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('issuer_since', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('installation').ifExists().execute();
}
