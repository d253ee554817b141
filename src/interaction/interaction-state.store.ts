import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';

/**
 * Server-side state of one sign-in interaction (the identifier typed so far, later a pending
 * code): kept out of hidden form fields, keyed by the interaction uid, gone when it expires.
 */
export class InteractionStateStore {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  async get(uid: string): Promise<Record<string, unknown>> {
    const row = await this.#db.selectFrom('interaction_state').select('data')
      .where('uid', '=', uid).where('expires_at', '>', sql<Date>`now()`).executeTakeFirst();
    return (row?.data as Record<string, unknown>) ?? {};
  }

  async merge(uid: string, data: Record<string, unknown>, ttlSeconds: number): Promise<void> {
    const json = JSON.stringify(data);
    const expiresAt = sql<Date>`now() + make_interval(secs => ${ttlSeconds})`;
    await this.#db.insertInto('interaction_state')
      .values({ uid, data: json, expires_at: expiresAt as never })
      .onConflict((oc) => oc.column('uid').doUpdateSet({ data: sql`interaction_state.data || ${json}::jsonb`, expires_at: expiresAt as never }))
      .execute();
  }

  async deleteExpired(limit: number): Promise<number> {
    const result = await sql`
      with doomed as (select uid from interaction_state where expires_at < now() limit ${limit})
      delete from interaction_state where uid in (select uid from doomed)`.execute(this.#db);
    return Number(result.numAffectedRows ?? 0);
  }
}
