import { sql, type Kysely } from 'kysely';

// Frozen once landed: later changes go into new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('account').addColumn('mfa_required', 'boolean', (c) => c.notNull().defaultTo(false)).execute();
  // A confirmed address for recovery only (never a sign-in factor).
  await db.schema.alterTable('account').addColumn('recovery_email', 'text').execute();
  await db.schema.alterTable('account').addColumn('recovery_email_verified_at', 'timestamptz').execute();
  await db.schema.alterTable('client').addColumn('require_mfa', 'boolean', (c) => c.notNull().defaultTo(false)).execute();
  await db.schema.alterTable('client').addColumn('mfa_max_age', 'integer').execute();
  await db.schema.alterTable('client').addColumn('legacy_password', 'boolean', (c) => c.notNull().defaultTo(false)).execute();

  // Passwords for systems that cannot do MFA, usable only through the password grant of clients
  // flagged --legacy-password. High-entropy, so an HMAC digest (not a slow hash) is enough.
  await db.schema.createTable('app_password')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('account_id', 'uuid', (c) => c.notNull().references('account.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('digest', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_used_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('app_password_account_idx').on('app_password').column('account_id').execute();

  await db.schema.createTable('mfa_factor')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('account_id', 'uuid', (c) => c.notNull().references('account.id').onDelete('cascade'))
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('totp','token','webauthn','phone')`))
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('secret_enc', 'text')
    .addColumn('digits', 'integer', (c) => c.notNull().defaultTo(6))
    .addColumn('period', 'integer', (c) => c.notNull().defaultTo(30))
    .addColumn('token_serial', 'text')
    // WebAuthn: the credential (base64url id and COSE public key), its signature counter, transports.
    .addColumn('credential_id', 'text', (c) => c.unique())
    .addColumn('public_key', 'text')
    .addColumn('sign_count', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('transports', 'text')
    .addColumn('is_default', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_used_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('mfa_factor_account_idx').on('mfa_factor').column('account_id').execute();

  // OATH TOTP hardware tokens the university lends to people without a suitable phone.
  await db.schema.createTable('hardware_token')
    .addColumn('serial', 'text', (c) => c.primaryKey())
    .addColumn('secret_enc', 'text', (c) => c.notNull())
    .addColumn('digits', 'integer', (c) => c.notNull())
    .addColumn('period', 'integer', (c) => c.notNull())
    .addColumn('assigned_to', 'uuid', (c) => c.references('account.id').onDelete('set null'))
    .addColumn('assigned_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  // One-time codes sent by SMS, voice call (and later email): single use, 10 minutes, 5 tries.
  await db.schema.createTable('otp_code')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('account_id', 'uuid', (c) => c.notNull().references('account.id').onDelete('cascade'))
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('code_digest', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('consumed_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('otp_code_account_idx').on('otp_code').columns(['account_id', 'purpose']).execute();

  // Time steps already accepted, so that no TOTP code works twice for an account.
  await db.schema.createTable('totp_step')
    .addColumn('account_id', 'uuid', (c) => c.notNull().references('account.id').onDelete('cascade'))
    .addColumn('step', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('totp_step_pk', ['account_id', 'step'])
    .execute();
  await db.schema.createIndex('totp_step_used_idx').on('totp_step').column('used_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('otp_code').ifExists().execute();
  await db.schema.dropTable('app_password').ifExists().execute();
  await db.schema.alterTable('client').dropColumn('legacy_password').execute();
  await db.schema.dropTable('totp_step').ifExists().execute();
  await db.schema.dropTable('hardware_token').ifExists().execute();
  await db.schema.dropTable('mfa_factor').ifExists().execute();
  await db.schema.alterTable('client').dropColumn('mfa_max_age').execute();
  await db.schema.alterTable('client').dropColumn('require_mfa').execute();
  await db.schema.alterTable('account').dropColumn('recovery_email_verified_at').execute();
  await db.schema.alterTable('account').dropColumn('recovery_email').execute();
  await db.schema.alterTable('account').dropColumn('mfa_required').execute();
}
