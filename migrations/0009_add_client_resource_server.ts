import { sql, type Kysely } from 'kysely';

// Frozen once landed: later changes go into new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  // A client that is an API (resource server) has a resource indicator (RFC 8707): relying parties
  // ask for tokens for it by this URI, and one URI names one API, so it is unique (null for the rest).
  await db.schema.alterTable('client').addColumn('resource_server', 'text').execute();
  await sql`create unique index client_resource_server_key on client (resource_server) where resource_server is not null`.execute(db);
  // The resource indicators of the APIs a client may get tokens for (registered per client, so that
  // no relying party acts at an API on a person's behalf unless an operator allowed it).
  await db.schema
    .alterTable('client')
    .addColumn('resources', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('client').dropColumn('resources').execute();
  await sql`drop index if exists client_resource_server_key`.execute(db);
  await db.schema.alterTable('client').dropColumn('resource_server').execute();
}
