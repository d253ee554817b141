import { sql, type Kysely } from 'kysely';

// Frozen once landed: later changes go into new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  // A system people sign in to speaks OpenID Connect or SAML 2.0. A SAML service provider is a
  // client too (its client_id is its entityID), so access rules, MFA, education, listing and
  // rollout are the same settings for both; its SAML registration is the `saml` document.
  await db.schema
    .alterTable('client')
    .addColumn('protocol', 'text', (c) => c.notNull().defaultTo('oidc').check(sql`protocol in ('oidc', 'saml')`))
    .addColumn('saml', 'jsonb')
    .execute();
  // An AuthnRequest on its way through the sign-in steps: kept server-side, so that the answer goes
  // only to the consumer service it named (checked against the registration) and each request is
  // answered once. (client_id, request_id) is unique: a replayed request ID is refused.
  await db.schema
    .createTable('saml_request')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('client_id', 'text', (c) => c.notNull().references('client.client_id').onDelete('cascade'))
    .addColumn('request_id', 'text')
    .addColumn('browser_hash', 'text', (c) => c.notNull())
    .addColumn('details', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('answered_at', 'timestamptz')
    .execute();
  await sql`create unique index saml_request_replay_key on saml_request (client_id, request_id) where request_id is not null`.execute(db);
  await db.schema.createIndex('saml_request_expires_idx').on('saml_request').column('expires_at').execute();
  // Each assertion given: which sign-in session it belongs to, so that ending that session (sign
  // out, sign out everywhere, suspension, revocation) can reach the SPs that support logout.
  await db.schema
    .createTable('saml_session')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('client_id', 'text', (c) => c.notNull().references('client.client_id').onDelete('cascade'))
    .addColumn('account_id', 'uuid', (c) => c.notNull().references('account.id').onDelete('cascade'))
    .addColumn('session_uid', 'text', (c) => c.notNull())
    .addColumn('name_id', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('ended_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('saml_session_session_idx').on('saml_session').column('session_uid').execute();
  await db.schema.createIndex('saml_session_account_idx').on('saml_session').column('account_id').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('saml_session').execute();
  await db.schema.dropTable('saml_request').execute();
  await db.schema.alterTable('client').dropColumn('saml').dropColumn('protocol').execute();
}
