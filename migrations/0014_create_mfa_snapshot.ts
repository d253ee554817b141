import { sql, type Kysely } from 'kysely';

// Frozen once landed: later changes go into new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  // The dashboard's MFA adoption over time: one row per day per dimension value, written once a day
  // by the periodic job of whichever node gets there first. The primary key is what keeps two nodes
  // (or two runs) from writing a day twice: the second insert of a row does nothing.
  await db.schema
    .createTable('mfa_snapshot')
    // A calendar date (YYYY-MM-DD) in the university's time zone, kept as text so no zone can shift it.
    .addColumn('day', 'text', (c) => c.notNull().check(sql`day ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'`))
    .addColumn('dimension', 'text', (c) => c.notNull().check(sql`dimension in ('all', 'affiliation', 'department')`))
    // The affiliation or top-level department; '' for "all" and for accounts without a department.
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('active_accounts', 'integer', (c) => c.notNull())
    .addColumn('mfa_accounts', 'integer', (c) => c.notNull())
    .addColumn('taken_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('mfa_snapshot_pk', ['day', 'dimension', 'value'])
    .execute();

  // The dashboard counts the last 30 days' failed sign-ins by reason and client: an index of only
  // the failures, carrying what is counted, so the count reads neither the successes nor the table.
  await sql`create index signin_event_failure_idx on signin_event (occurred_at) include (reason, client_id, account_id) where result = 'failure'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists signin_event_failure_idx`.execute(db);
  await db.schema.dropTable('mfa_snapshot').ifExists().execute();
}
