import type { Kysely } from 'kysely';

// Frozen once landed: later changes go into new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  // On an access or refresh token: the code or refresh token it was issued in exchange for. A
  // client whose answer was lost presents that one again; what it replaced is found by this.
  await db.schema.alterTable('oidc_payload').addColumn('replaces', 'text').execute();
  // On a consumed code or refresh token: when its one retry was granted (src/oidc/token-retry.ts).
  await db.schema.alterTable('oidc_payload').addColumn('retried_at', 'timestamptz').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('oidc_payload').dropColumn('retried_at').execute();
  await db.schema.alterTable('oidc_payload').dropColumn('replaces').execute();
}
