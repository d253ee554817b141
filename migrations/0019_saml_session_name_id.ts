import { type Kysely, sql } from 'kysely';

// Frozen once landed: later changes go into new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  // A LogoutRequest without SessionIndex ends the person's sessions at that SP, found by its NameID.
  await sql`create index saml_session_client_name_id_idx on saml_session (client_id, (name_id->>'value'))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('saml_session_client_name_id_idx').execute();
}
