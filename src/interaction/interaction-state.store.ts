import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';

/** Where the holder of a flow's turn is written in its state; never handed to callers. */
const TURN = '_turn';

/**
 * Server-side state of one sign-in interaction (the identifier typed so far, later a pending
 * code): kept out of hidden form fields, keyed by the interaction uid, gone when it expires.
 * The recovery and identity-verification flows keep theirs here too, under their own keys.
 */
export class InteractionStateStore {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  async get(uid: string): Promise<Record<string, unknown>> {
    const row = await this.#db
      .selectFrom('interaction_state')
      .select(sql<Record<string, unknown>>`data - ${TURN}::text`.as('data'))
      .where('uid', '=', uid)
      .where('expires_at', '>', sql<Date>`now()`)
      .executeTakeFirst();
    return row?.data ?? {};
  }

  async merge(uid: string, data: Record<string, unknown>, ttlSeconds: number): Promise<void> {
    const json = JSON.stringify(data);
    const expiresAt = sql<Date>`now() + make_interval(secs => ${ttlSeconds})`;
    await this.#db
      .insertInto('interaction_state')
      .values({ uid, data: json, expires_at: expiresAt as never })
      // An expired row is as good as absent: its data must not come back to life.
      .onConflict((oc) =>
        oc.column('uid').doUpdateSet({
          data: sql`case when interaction_state.expires_at > now() then interaction_state.data || ${json}::jsonb else ${json}::jsonb end`,
          expires_at: expiresAt as never,
        }),
      )
      .execute();
  }

  /**
   * Applies `patch` only if every key of `expected` still holds that value (an absent key counts as
   * null). One UPDATE: of concurrent transitions out of the same state, exactly one happens.
   */
  async transition(uid: string, expected: Record<string, unknown>, patch: Record<string, unknown>, ttlSeconds: number): Promise<boolean> {
    const holds = Object.entries(expected).map(([key, value]) => sql<boolean>`coalesce(data -> ${key}::text, 'null'::jsonb) = ${JSON.stringify(value ?? null)}::jsonb`);
    const row = await this.#db
      .updateTable('interaction_state')
      .set({ data: sql`data || ${JSON.stringify(patch)}::jsonb`, expires_at: sql<Date>`now() + make_interval(secs => ${ttlSeconds})` as never })
      .where('uid', '=', uid)
      .where('expires_at', '>', sql<Date>`now()`)
      .where(holds.length ? sql<boolean>`${sql.join(holds, sql` and `)}` : sql<boolean>`true`)
      .returning('uid')
      .executeTakeFirst();
    return row !== undefined;
  }

  /**
   * Takes the turn of `uid` for `holdSeconds` under `token`, unless another request holds it (a
   * turn whose holder died ends by itself). One statement: of concurrent takers exactly one gets
   * it. Returns the state as the holder finds it, or undefined when the turn is taken.
   */
  async takeTurn(uid: string, token: string, holdSeconds: number): Promise<Record<string, unknown> | undefined> {
    const until = sql<Date>`now() + make_interval(secs => ${holdSeconds})`;
    const result = await sql<{ data: Record<string, unknown> }>`
      insert into interaction_state as s (uid, data, expires_at)
      values (${uid}, jsonb_build_object(${TURN}::text, jsonb_build_object('token', ${token}::text, 'until', ${until})), ${until})
      on conflict (uid) do update set
        data = case when s.expires_at > now() then s.data || excluded.data else excluded.data end,
        expires_at = greatest(s.expires_at, excluded.expires_at)
      where s.expires_at <= now() or s.data -> ${TURN}::text is null or (s.data -> ${TURN}::text ->> 'until')::timestamptz <= now()
      returning s.data - ${TURN}::text as data`.execute(this.#db);
    return result.rows[0]?.data;
  }

  /**
   * Gives the turn back, leaving `patch` in the state, which then lives at least `ttlSeconds` more;
   * a turn taken over meanwhile is not touched.
   */
  async endTurn(uid: string, token: string, patch: Record<string, unknown>, ttlSeconds: number): Promise<void> {
    await this.#db
      .updateTable('interaction_state')
      .set({
        data: sql`(data - ${TURN}::text) || ${JSON.stringify(patch)}::jsonb`,
        expires_at: sql<Date>`greatest(expires_at, now() + make_interval(secs => ${ttlSeconds}))` as never,
      })
      .where('uid', '=', uid)
      .where(sql<boolean>`data -> ${TURN}::text ->> 'token' = ${token}::text`)
      .execute();
  }

  async deleteExpired(limit: number): Promise<number> {
    const result = await sql`
      with doomed as (select uid from interaction_state where expires_at < now() limit ${limit})
      delete from interaction_state where uid in (select uid from doomed)`.execute(this.#db);
    return Number(result.numAffectedRows ?? 0);
  }
}
