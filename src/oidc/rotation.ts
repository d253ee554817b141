import { sql, type Kysely } from 'kysely';
import Provider from 'oidc-provider';
import type { DB } from '../db/schema.ts';
import { isPresented } from './token-retry.ts';

/**
 * A refresh grant rotates (provider.ts rotateRefreshToken): the provider consumes the presented
 * refresh token, saves its successor, then saves the access token, and reads nothing from the
 * database in between. The adapter holds the first two writes back and makes all three as one
 * statement when the access token is saved: one round trip instead of three, and atomic by itself.
 * Of concurrent rotations of one token exactly one statement consumes it; the others insert
 * nothing and are replays, as with the UPDATE alone. A request that fails before its access token
 * is saved writes nothing: the presented token stays usable. Any other adapter call writes what is
 * held first (`settle`), so a read never misses a held write.
 */

/** A row of the provider's table as the adapter writes it; `seconds` is its lifetime (none: no expiry). */
export interface ProviderRow {
  model: string;
  id: string;
  payload: string;
  grant_id: string | null;
  user_code: string | null;
  uid: string | null;
  account_id: string | null;
  seconds: number | null;
}

interface Held {
  /** The presented refresh token, consumed by the statement. */
  consumed: string;
  /** Its successors, by model and id (a second save of one replaces the first). */
  rows: Map<string, ProviderRow>;
}

/** Keyed by the request's context, which the provider hands to its adapter through Provider.ctx. */
const held = new WeakMap<object, Held>();

/** Holds back the consumption of `id` when it is the refresh token a refresh grant presents (first presentation). */
export function holdConsumption(model: string, id: string): boolean {
  const ctx = Provider.ctx;
  if (!ctx || model !== 'RefreshToken' || !isPresented(model, id)) return false;
  held.set(ctx, { consumed: id, rows: new Map() });
  return true;
}

/** What this request holds back, if anything. */
export function heldWrites(): Held | undefined {
  const ctx = Provider.ctx;
  return ctx && held.get(ctx);
}

/** Takes what this request holds back: the caller writes it now. */
export function takeHeld(): Held | undefined {
  const ctx = Provider.ctx;
  const writes = ctx && held.get(ctx);
  if (ctx) held.delete(ctx);
  return writes;
}

/**
 * Consumes the presented refresh token and inserts its successors in one statement. Answers the
 * consumed token's grant, or undefined when it was consumed already (nothing was written then).
 * `replaces` records what a successor of the same grant was issued in exchange for (token-retry.ts).
 */
export async function writeHeld(db: Kysely<DB>, writes: Held): Promise<{ grantId: string | null } | undefined> {
  const rows = [...writes.rows.values()];
  const successors = rows.length
    ? sql`, written as (
        insert into oidc_payload (model, id, payload, grant_id, user_code, uid, account_id, expires_at, replaces)
        select v.model, v.id, v.payload::jsonb, v.grant_id, v.user_code, v.uid, v.account_id,
          now() + make_interval(secs => v.seconds::float8),
          case when v.grant_id = consumed.grant_id then ${writes.consumed} end
        from consumed cross join (values ${sql.join(
          rows.map((r) => sql`(${r.model}, ${r.id}, ${r.payload}, ${r.grant_id}, ${r.user_code}, ${r.uid}, ${r.account_id}, ${r.seconds})`),
        )}) as v(model, id, payload, grant_id, user_code, uid, account_id, seconds)
        on conflict (model, id) do update set payload = excluded.payload, grant_id = excluded.grant_id, user_code = excluded.user_code,
          uid = excluded.uid, account_id = excluded.account_id, expires_at = excluded.expires_at
      )`
    : sql``;
  // The time is the statement's, not the transaction's: a retry must have arrived after it (token-retry.ts).
  const { rows: consumed } = await sql<{ grant_id: string | null }>`
    with consumed as (
      update oidc_payload set consumed_at = clock_timestamp()
      where model = 'RefreshToken' and id = ${writes.consumed} and consumed_at is null
      returning grant_id
    )${successors}
    select grant_id from consumed`.execute(db);
  return consumed[0] && { grantId: consumed[0].grant_id };
}
