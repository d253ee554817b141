import { sql, type Kysely } from 'kysely';

// Frozen once landed: later changes go into new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  // A CSV import started in the console: its counts are updated as rows finish, so any node can
  // show the progress, and a job whose heartbeat stopped (its node died) shows as interrupted.
  await db.schema
    .createTable('import_job')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('file_name', 'text', (c) => c.notNull())
    .addColumn('total', 'integer', (c) => c.notNull())
    .addColumn('processed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('failed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('heartbeat_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('finished_at', 'timestamptz')
    // When the initial passwords were handed out (or wiped unclaimed): they are never shown again.
    .addColumn('secrets_gone_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('import_job_actor_idx').on('import_job').columns(['actor', 'created_at']).execute();

  // One row of the file: its outcome and every problem found with it. `secret` is the initial
  // password of a created account, encrypted with the secret box, until it is handed out once.
  await db.schema
    .createTable('import_job_row')
    .addColumn('job_id', 'uuid', (c) => c.notNull().references('import_job.id').onDelete('cascade'))
    .addColumn('line', 'integer', (c) => c.notNull())
    .addColumn('common_id', 'text')
    .addColumn('name', 'text')
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('errors', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('secret', 'text')
    .addColumn('done_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('import_job_row_pk', ['job_id', 'line'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('import_job_row').execute();
  await db.schema.dropTable('import_job').execute();
}
