import { sql, type Kysely, type OperationNodeSource, type RawBuilder } from 'kysely';
import type { DB } from '../db/schema.ts';
import { inOneStatement } from '../db/one-statement.ts';
import { prepared } from '../db/prepared.ts';
import { compiledOnce, type Value } from '../db/compiled-once.ts';
import { begunAfterSessionsEnded, live, rememberProviderRow } from '../db/provider-rows.ts';
import { clientMemoKey, clientRowQuery, type ClientRow } from '../client/client.store.ts';
import { remember } from '../shared/request-memo.ts';

/** Where the holder of a flow's turn is written in its state; never handed to callers. */
const TURN = '_turn';

/** The live Interaction row of the provider with this uid (its id), as the adapter reads it. */
const interactionRow = (uid: Value<string>) => sql`select payload, consumed_at from oidc_payload where model = 'Interaction' and id = ${uid} and ${live('oidc_payload')}`;
/** The live Session row of `uid`, as the adapter's read of it by uid finds it. */
const sessionRow = (uid: RawBuilder<unknown>) =>
  sql`select payload, consumed_at from oidc_payload where model = 'Session' and uid = ${uid} and ${live('oidc_payload')} and ${begunAfterSessionsEnded('oidc_payload', 'Session')} limit 1`;

/** A row read with an interaction: its provider row, whether there is one, the state asked for, its session's row and its client's columns. */
type ReadWithInteraction = {
  interaction_payload: unknown;
  interaction_consumed_at: Date | string | null;
  found: boolean;
  data: Record<string, unknown> | null;
  session_payload: unknown;
  session_consumed_at: Date | string | null;
} & Partial<ClientRow>;

/** The statement that takes a turn (see takeTurn); `only` (a WHERE on the values) may skip it. */
function turnTaking(uid: Value<string>, token: Value<string>, holdSeconds: Value<number>, only = sql``) {
  const until = sql<Date>`now() + make_interval(secs => ${holdSeconds})`;
  return sql`
    insert into interaction_state as s (uid, data, expires_at)
    select ${uid}, jsonb_build_object(${TURN}::text, jsonb_build_object('token', ${token}::text, 'until', ${until})), ${until} ${only}
    on conflict (uid) do update set
      data = case when s.expires_at > now() then s.data || excluded.data else excluded.data end,
      expires_at = greatest(s.expires_at, excluded.expires_at)
    where s.expires_at <= now() or s.data -> ${TURN}::text is null or (s.data -> ${TURN}::text ->> 'until')::timestamptz <= now()
    returning s.data - ${TURN}::text as data`;
}

/**
 * One statement: the interaction, its signed-in session (by uid), its client (by the client_id it
 * was begun with) and `data` (with `turn` as a CTE beside them). Every step's page and form makes
 * it, and each of its lookups is by a key: prepared (db/prepared.ts), and compiled once.
 */
function readWithInteraction(db: Kysely<DB>, uid: Value<string>, data: RawBuilder<unknown>, turn?: RawBuilder<unknown>) {
  return prepared(sql<ReadWithInteraction>`
      with interaction as (${interactionRow(uid)})${turn ? sql`, turn as (${turn})` : sql``}
      select i.payload as interaction_payload, i.consumed_at as interaction_consumed_at, i.payload is not null as found, ${data} as data,
        s.payload as session_payload, s.consumed_at as session_consumed_at, c.*
      from (select 1) one left join interaction i on true
      left join lateral (${sessionRow(sql`i.payload->'session'->>'uid'`)}) s on true
      left join lateral ${clientRowQuery(db, sql<string>`i.payload->'params'->>'client_id'`)} c on true`);
}

/** takeInteractionTurn's statement: no state is written for an interaction that does not exist or has expired. */
const readTakingTurn = compiledOnce<{ uid: string; token: string; holdSeconds: number }, ReadWithInteraction>((bind, db) =>
  readWithInteraction(db, bind('uid'), sql`(select data from turn)`, turnTaking(bind('uid'), bind('token'), bind('holdSeconds'), sql`where exists (select 1 from interaction)`)),
);

/** getWithInteraction's statement. */
const readState = compiledOnce<{ uid: string }, ReadWithInteraction>((bind, db) =>
  readWithInteraction(db, bind('uid'), sql`(select s.data - ${TURN}::text from interaction_state s where s.uid = ${bind('uid')} and s.expires_at > now())`),
);

type TurnEnd = { uid: string; token: string; patch: string; ttlSeconds: number };

/** The update that gives a turn back (endTurn), with the values given or bound. */
function turnEnd(db: Kysely<DB>, values: { [K in keyof TurnEnd]: Value<TurnEnd[K]> }) {
  return db
    .updateTable('interaction_state')
    .set({
      data: sql`(data - ${TURN}::text) || ${values.patch}::jsonb`,
      expires_at: sql<Date>`greatest(expires_at, now() + make_interval(secs => ${values.ttlSeconds}))` as never,
    })
    .where('uid', '=', values.uid)
    .where(sql<boolean>`data -> ${TURN}::text ->> 'token' = ${values.token}::text`);
}

/** A turn's end alone (a step that wrote nothing else): the same text each time, by its key: prepared (db/prepared.ts), compiled once. */
const endingTurn = compiledOnce<TurnEnd, unknown>((bind, db) => prepared(sql`${turnEnd(db, { uid: bind('uid'), token: bind('token'), patch: bind('patch'), ttlSeconds: bind('ttlSeconds') })}`));

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
    const result = await sql<{ data: Record<string, unknown> }>`${turnTaking(uid, token, holdSeconds)}`.execute(this.#db);
    return result.rows[0]?.data;
  }

  /**
   * takeTurn for a sign-in interaction, in the same statement as the reads of its provider row and
   * its client's row (which the provider's and the client store's reads in this request then
   * answer: request-memo). No state is written for an interaction that does not exist or has
   * expired: the caller gets an empty state, finds no interaction, and answers so.
   */
  async takeInteractionTurn(uid: string, token: string, holdSeconds: number): Promise<Record<string, unknown> | undefined> {
    const row = this.#remembered((await readTakingTurn(this.#db, { uid, token, holdSeconds })).rows[0]!, uid);
    if (!row.found) return {};
    return row.data ?? undefined;
  }

  /** get for a sign-in interaction, in the same statement as the reads of its rows (see takeInteractionTurn). */
  async getWithInteraction(uid: string): Promise<Record<string, unknown>> {
    return this.#remembered((await readState(this.#db, { uid })).rows[0]!, uid).data ?? {};
  }

  /** What a read with the interaction brought, kept for the provider's and the client store's reads in this request. */
  #remembered(row: ReadWithInteraction, uid: string): { found: boolean; data: Record<string, unknown> | null } {
    const { interaction_payload, interaction_consumed_at, found, data, session_payload, session_consumed_at, ...client } = row;
    rememberProviderRow('Interaction', 'id', uid, found ? { payload: interaction_payload, consumed_at: interaction_consumed_at } : undefined);
    // The provider checks the signed-in session of an interaction by its uid (interactionDetails).
    const sessionUid = (interaction_payload as { session?: { uid?: unknown } } | null)?.session?.uid;
    if (typeof sessionUid === 'string') rememberProviderRow('Session', 'uid', sessionUid, session_payload ? { payload: session_payload, consumed_at: session_consumed_at } : undefined);
    if (client.client_id) remember(clientMemoKey(client.client_id), client);
    return { found, data };
  }

  /**
   * Gives the turn back, leaving `patch` in the state, which then lives at least `ttlSeconds` more;
   * a turn taken over meanwhile is not touched. `alongside`: writes made in the same statement.
   */
  async endTurn(uid: string, token: string, patch: Record<string, unknown>, ttlSeconds: number, alongside: OperationNodeSource[] = []): Promise<void> {
    const values = { uid, token, patch: JSON.stringify(patch), ttlSeconds };
    await (alongside.length ? inOneStatement([...alongside, turnEnd(this.#db, values)]).execute(this.#db) : endingTurn(this.#db, values));
  }

  async deleteExpired(limit: number): Promise<number> {
    const result = await sql`
      with doomed as (select uid from interaction_state where expires_at < now() limit ${limit})
      delete from interaction_state where uid in (select uid from doomed)`.execute(this.#db);
    return Number(result.numAffectedRows ?? 0);
  }
}
