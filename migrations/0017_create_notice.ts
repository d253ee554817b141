import { sql, type Kysely } from 'kysely';

// Frozen once landed: later changes go into new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  // One mail to one of an account's addresses about one occasion (src/notice/): the unique key makes
  // "once per occasion" hold across nodes, since every node inserts with ON CONFLICT DO NOTHING.
  // `occasion` names what the mail is about: the revocation date and lead time, the password's set
  // time and lead time, the MFA date and lead time, or the sign-in method's event.
  await db.schema
    .createTable('notice')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('account_id', 'uuid', (c) => c.notNull().references('account.id').onDelete('cascade'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('occasion', 'text', (c) => c.notNull())
    // 'university' or 'recovery': which of the account's addresses, read again when it is sent.
    .addColumn('recipient', 'text', (c) => c.notNull())
    // What the text needs (the date, the kind of sign-in method), fixed when the occasion was found.
    .addColumn('details', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    // pending -> sent | failed (attempts used up) | dropped (the occasion went away, or no address).
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('pending'))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    // The next try; while a node sends, a lease a little ahead so that no other node takes it too.
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_error', 'text')
    // The address it went to, masked (h****@e****.com): enough for the help desk, nothing to harvest.
    .addColumn('sent_to', 'text')
    .addColumn('sent_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('notice_occasion_key', ['account_id', 'kind', 'occasion', 'recipient'])
    .execute();
  // The delivery job reads only what is pending and due.
  await sql`create index notice_pending_idx on notice (next_attempt_at) where status = 'pending'`.execute(db);
  // The MFA-date notice walks all accounts in id order: where the last batch stopped is one index probe.
  await db.schema.createIndex('notice_kind_occasion_idx').on('notice').columns(['kind', 'occasion', 'account_id']).execute();
  // Passwords about to expire are found by when they were set.
  await db.schema.createIndex('account_password_set_at_idx').on('account').column('password_set_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('account_password_set_at_idx').execute();
  await db.schema.dropTable('notice').execute();
}
