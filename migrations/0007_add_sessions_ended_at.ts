import type { Kysely } from 'kysely';

// Frozen once landed: later changes go into new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  // When every session of the account was last ended ("sign out everywhere", suspension,
  // revocation, a password reset or reissue). The rows are deleted at that moment; a session or
  // grant that a request still in flight writes back afterwards began before this time, so it is
  // dead wherever it is read, on every node.
  await db.schema.alterTable('account').addColumn('sessions_ended_at', 'timestamptz').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('account').dropColumn('sessions_ended_at').execute();
}
