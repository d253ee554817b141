import { sql, type Kysely } from 'kysely';

// Frozen once landed: later changes go into new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  // Whether the university vouches for the address in `email`: an address it registered (set by
  // an operator or imported) counts as verified unless the import says it was typed in by the
  // person and never checked.
  await db.schema.alterTable('account').addColumn('email_verified', 'boolean', (c) => c.notNull().defaultTo(true)).execute();
  // The name in parts: in Latin script, in Japanese script (kanji, kana) and its reading in
  // katakana. `name` stays the name as the operator gave it, for accounts without parts.
  for (const column of ['family_name', 'given_name', 'family_name_ja', 'given_name_ja', 'family_name_kana', 'given_name_kana']) {
    await db.schema.alterTable('account').addColumn(column, 'text').execute();
  }
  // The organisational unit ("eng", "eng/mech"): a code from the feeding system, levels separated by "/".
  await db.schema.alterTable('account').addColumn('department', 'text').execute();
  // Help desks list the accounts of their department and everything under it (prefix match).
  await sql`create index account_department_idx on account (department text_pattern_ops) where department is not null`.execute(db);
  // eduPerson entitlement URIs set by operators for this account.
  await db.schema.alterTable('account').addColumn('entitlements', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`)).execute();

  // The departments a client admits (null: every department), like allowed_affiliations.
  await db.schema.alterTable('client').addColumn('allowed_departments', sql`text[]`).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('client').dropColumn('allowed_departments').execute();
  await sql`drop index if exists account_department_idx`.execute(db);
  for (const column of ['entitlements', 'department', 'given_name_kana', 'family_name_kana', 'given_name_ja', 'family_name_ja', 'given_name', 'family_name', 'email_verified']) {
    await db.schema.alterTable('account').dropColumn(column).execute();
  }
}
