import { createHash } from 'node:crypto';
import { sql, type Kysely, type OperationNodeSource, type RawBuilder } from 'kysely';
import type { DB } from '../db/schema.ts';
import { holdWrite, inOneStatement } from '../db/one-statement.ts';
import { prepared } from '../db/prepared.ts';
import { compiledOnce, type Value } from '../db/compiled-once.ts';
import type { Clock } from '../shared/clock.ts';
import { sourceOf } from './source.ts';
import { PASSWORD_THROTTLE_PER_ACCOUNT, PASSWORD_THROTTLE_PER_ADDRESS, THROTTLE_RESERVATION_SECONDS } from '../config/defaults.ts';

/**
 * Brute-force protection for guessable secrets, counted in Postgres so that it holds across nodes.
 * A key counts consecutive failures; from the `free`-th failure on, each failure locks the key for a
 * growing time (doubling from `baseSeconds`, capped at `maxSeconds`). At `hardStop` failures the key
 * stays locked until an operator clears it (NIST SP 800-63B-4: at most 100 consecutive failures).
 */
export interface ThrottleRule {
  free: number;
  baseSeconds: number;
  maxSeconds: number;
  hardStop?: number;
  /** Failures older than this (since the last one) are forgotten; undefined means never. */
  forgetAfterSeconds?: number;
}

/** Per account: slow enough that reaching 100 consecutive failures takes days. */
export const ACCOUNT_RULE: ThrottleRule = PASSWORD_THROTTLE_PER_ACCOUNT;
/** Per source address: generous, since a whole campus can sit behind one NAT address. */
export const ADDRESS_RULE: ThrottleRule = PASSWORD_THROTTLE_PER_ADDRESS;

export interface ThrottleKey {
  key: string;
  rule: ThrottleRule;
}

export interface ThrottleState {
  /** Seconds until another attempt is allowed; 0 when allowed now. */
  waitSeconds: number;
  /** The hard stop was reached: only an operator can clear it. */
  blocked: boolean;
}

const OPEN: ThrottleState = { waitSeconds: 0, blocked: false };

export function lockSeconds(failures: number, rule: ThrottleRule): number {
  if (failures < rule.free) return 0;
  return Math.min(rule.baseSeconds * 2 ** (failures - rule.free), rule.maxSeconds);
}

/** Keys of budgets (takeFromBucket): their rows go as soon as their bucket is full again. */
const BUCKET_PREFIX = 'bucket:';

/** What a budget allows: `burst` uses at once, refilled by one every `refillSeconds`. */
export interface Bucket {
  readonly burst: number;
  readonly refillSeconds: number;
}

/** Counts stop here: an integer column must not overflow under a flood of refusals. */
const MAX_COUNT = 1_000_000;

/** Keys longer than this are stored as their hash: the primary key's index refuses long values. */
const MAX_KEY_LENGTH = 200;

/**
 * The key as stored. Keys carry what callers sent (a typed Common ID, a client's address), so one
 * of any length must work: a long one keeps its fixed prefix (`account:`, `bucket:anonymous:`,
 * which the sweep and operators read) and the rest becomes a SHA-256 hash.
 */
function storedKey(key: string): string {
  if (key.length <= MAX_KEY_LENGTH) return key;
  const prefix = /^(?:[a-z_-]{1,32}:){1,3}/.exec(key)?.[0] ?? '';
  return `${prefix}sha256:${createHash('sha256').update(key).digest('base64url')}`;
}

type BucketRow = { failures: number; locked_until: Date | string };

/**
 * The statement that takes `cost` uses from a budget (see takeFromBucket), returning the row's
 * `failures` (0: the use fitted) and `locked_until`. `only` (a WHERE on the values) skips it.
 */
function bucketUse(name: string, { burst, refillSeconds }: Bucket, cost: number, now: Date, only = sql``) {
  // A use may count as several (a list of many rows); more than the whole bucket is one full bucket.
  const step = sql`make_interval(secs => ${refillSeconds * Math.min(Math.max(1, cost), burst)}::float8)`;
  const span = burst * refillSeconds;
  const full = sql`${now}::timestamptz + make_interval(secs => ${span}::float8)`;
  // A stored time past `full` means a clock reading older than the one that wrote it. Parallel
  // requests make that all the time: each reads the clock before it waits its turn for the row,
  // so a bucket emptied by later readings looks "overfull" to an earlier one; it stays empty, and
  // that use is refused. Only a stored time more than a whole span past `full` (the clock went back
  // by more than the span: a correction, a test's clock) starts the bucket afresh, as its history
  // is then unknowable, rather than refusing everyone until the clock catches up. Only the
  // server's clock can cause that, never a caller.
  const drained = sql`case when t.locked_until > ${full} + make_interval(secs => ${span}::float8) then ${now}::timestamptz else t.locked_until end`;
  const next = sql`greatest(${drained}, ${now}::timestamptz) + ${step}`;
  const fits = sql<boolean>`${next} <= ${full}`;
  return sql`
    insert into throttle as t (key, failures, last_failure_at, locked_until)
    select ${storedKey(BUCKET_PREFIX + name)}, 0, ${now}::timestamptz, ${now}::timestamptz + ${step} ${only}
    on conflict (key) do update set
      locked_until = case when ${fits} then ${next} else ${drained} end,
      failures = case when ${fits} then 0 else least(t.failures + 1, ${MAX_COUNT}::int) end,
      last_failure_at = ${now}
    returning failures, locked_until`;
}

/** What a budget's row after a use says: open, or how long until the next use fits. */
function bucketState(row: BucketRow, { burst, refillSeconds }: Bucket, now: Date): ThrottleState {
  if (row.failures === 0) return OPEN;
  // The next use fits once the bucket has drained to one step below full.
  const fitsAtMs = new Date(row.locked_until).getTime() + refillSeconds * 1000 - burst * refillSeconds * 1000;
  return { waitSeconds: Math.max(1, Math.ceil((fitsAtMs - now.getTime()) / 1000)), blocked: false };
}

/**
 * A condition, always true, that first locks the rows of `keys` in the keys' order, as reserve claims
 * them. A statement that ends claims on several keys has it in each of its writes: PostgreSQL runs a
 * statement's WITH parts in an order of its own (the last first, in practice), and two statements
 * that take the same two rows in opposite orders can deadlock. The one PostgreSQL then aborts may be
 * a failure's count: a guess checked, answered 503, and not counted, while its claim holds the key.
 */
function inKeyOrder(keys: ThrottleKey[]): RawBuilder<boolean> {
  if (keys.length < 2) return sql<boolean>`true`;
  const order = sql.join(keys.map(({ key }, i) => sql`(${storedKey(key)}::text, ${i}::int)`));
  return sql<boolean>`(select count(*) from (
    select from throttle as l join (values ${order}) as k (key, n) on l.key = k.key order by k.n for update of l) as locked) >= 0`;
}

/** A reservation whose request died (a node crashed mid-check) stops counting after this. */
const PENDING_EXPIRY_SECONDS = THROTTLE_RESERVATION_SECONDS;

/** Failures that still count: a rule may forget them after a quiet period (`forget` seconds; null: never). */
function failuresNow(forget: Value<number | null>, now: Value<Date>): RawBuilder<number> {
  return sql<number>`(case
      when ${forget}::int is not null and t.last_failure_at < ${now}::timestamptz - make_interval(secs => ${forget}::int) then 0
      else t.failures end)`;
}

/** The claim of one check on a key (see reserve), returning its key when claimed; `only` (a WHERE on the values) may skip it. */
function claiming(claim: { key: Value<string>; forget: Value<number | null>; hardStop: Value<number | null>; free: Value<number> }, now: Value<Date>, only: RawBuilder<unknown>) {
  const failures = failuresNow(claim.forget, now);
  const pending = sql<number>`(case when t.pending_since < ${now}::timestamptz - make_interval(secs => ${PENDING_EXPIRY_SECONDS}) then 0 else t.pending end)`;
  return sql`
      insert into throttle as t (key, failures, pending, pending_since)
      select ${claim.key}, 0, 1, ${now}::timestamptz ${only}
      on conflict (key) do update set failures = ${failures}, pending = ${pending} + 1, pending_since = ${now}
      where (t.locked_until is null or t.locked_until <= ${now})
        and (${claim.hardStop}::int is null or t.failures < ${claim.hardStop}::int)
        and (${failures} + ${pending} < ${claim.free}::int or ${pending} = 0)
      returning t.key`;
}

/**
 * reserve's statement for `count` keys, one statement whatever their number: each key is claimed
 * only if the one before it was. Prepared (db/prepared.ts) and compiled once per number of keys;
 * each key's values are bound by its index.
 */
const claimStatements = new Map<number, ReturnType<typeof compiledOnce<Record<string, unknown>, { claimed: number }>>>();
function claimStatement(count: number) {
  let statement = claimStatements.get(count);
  if (!statement) {
    statement = compiledOnce<Record<string, unknown>, { claimed: number }>((bind) => {
      const claims = Array.from({ length: count }, (_, i) => {
        const claim = {
          key: bind(`key${i}`) as RawBuilder<string>,
          forget: bind(`forget${i}`) as RawBuilder<number | null>,
          hardStop: bind(`hardStop${i}`) as RawBuilder<number | null>,
          free: bind(`free${i}`) as RawBuilder<number>,
        };
        return sql`${sql.id(`claim_${i}`)} as (${claiming(claim, bind('now') as RawBuilder<Date>, i ? sql`where exists (select 1 from ${sql.id(`claim_${i - 1}`)})` : sql``)})`;
      });
      const counted = Array.from({ length: count }, (_, i) => sql`(select count(*) from ${sql.id(`claim_${i}`)})`);
      return prepared(sql<{ claimed: number }>`with ${sql.join(claims)} select (${sql.join(counted, sql` + `)})::int as claimed`);
    });
    claimStatements.set(count, statement);
  }
  return statement;
}

export class LoginThrottle {
  readonly #db: Kysely<DB>;
  readonly #clock: Clock;

  constructor(db: Kysely<DB>, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  /**
   * Claims the right to check one guess, atomically per key, before the secret is hashed. A key
   * refuses while it is locked, and otherwise lets only as many checks run at once as it has free
   * failures left (one at a time once the free ones are used), so parallel guesses cannot slip
   * through before the first failure is written. Every successful claim must end with
   * `failed`, `succeeded` or `release`.
   */
  async reserve(keys: ThrottleKey[]): Promise<ThrottleState> {
    if (!keys.length) return OPEN;
    const values: Record<string, unknown> = { now: this.#clock.now() };
    for (const [i, { key, rule }] of keys.entries()) {
      Object.assign(values, { [`key${i}`]: storedKey(key), [`forget${i}`]: rule.forgetAfterSeconds ?? null, [`hardStop${i}`]: rule.hardStop ?? null, [`free${i}`]: rule.free });
    }
    const { rows } = await claimStatement(keys.length)(this.#db, values);
    const claimed = rows[0]!.claimed;
    if (claimed === keys.length) return OPEN;
    await this.release(keys.slice(0, claimed));
    return this.#state(keys[claimed]!);
  }

  /**
   * One guess at a secret under `keys`' limits (reserve, then the check): refused unchecked while
   * they lock it; a wrong guess counts, a right one clears them, and one never checked (the check
   * threw: too busy) counts nothing.
   */
  async guess<T>(keys: ThrottleKey[], check: () => Promise<T>, right: (outcome: T) => boolean): Promise<{ locked: ThrottleState } | { outcome: T }> {
    const state = await this.reserve(keys);
    if (state.blocked || state.waitSeconds > 0) return { locked: state };
    let outcome: T;
    try {
      outcome = await check();
    } catch (error) {
      await this.release(keys);
      throw error;
    }
    if (right(outcome)) await this.succeeded(keys);
    else await this.failed(keys);
    return { outcome };
  }

  /**
   * A use that counts whatever follows (starting a reset, an identity verification, a recovery):
   * refused while a key is locked, otherwise counted at once.
   */
  async countUse(keys: ThrottleKey[]): Promise<ThrottleState> {
    const state = await this.reserve(keys);
    if (state.blocked || state.waitSeconds > 0) return state;
    await this.failed(keys);
    return OPEN;
  }

  /**
   * A budget that refills steadily (a token bucket, kept as GCRA's "theoretical arrival time"): up
   * to `burst` uses at once, then one more every `refillSeconds`. Unlike a fixed window, a caller
   * who empties it does not shut out everyone who shares it (a campus behind one NAT address) for
   * the rest of a window: the next use is free `refillSeconds` later, whoever makes it. It never
   * slows a steady use below its rate and never serialises parallel uses. One atomic statement
   * decides, so parallel requests on any node cannot pass together; a refused use takes nothing.
   * (The row's `locked_until` is when the bucket is full again, `failures` the refusals since the
   * last use; the sweep removes the row once it is full, as if it had never been used.)
   */
  async takeFromBucket(name: string, bucket: Bucket, cost = 1): Promise<ThrottleState> {
    const now = this.#clock.now();
    const { rows } = await sql<BucketRow>`${bucketUse(name, bucket, cost, now)}`.execute(this.#db);
    return bucketState(rows[0]!, bucket, now);
  }

  /**
   * One use of `first`, and only if it fits, one of `second`: in one statement, so a caller over the
   * first budget never spends the second. Answers the first refusal, or OPEN.
   */
  async takeFromBuckets(first: { name: string; bucket: Bucket }, second: { name: string; bucket: Bucket }): Promise<{ refused?: 'first' | 'second'; state: ThrottleState }> {
    const now = this.#clock.now();
    const { rows } = await prepared(sql<BucketRow & { which: 'first' | 'second' }>`
      with first_use as (${bucketUse(first.name, first.bucket, 1, now)}),
      second_use as (${bucketUse(second.name, second.bucket, 1, now, sql`where (select failures from first_use) = 0`)})
      select 'first' as which, * from first_use union all select 'second', * from second_use`).execute(this.#db);
    for (const row of rows) {
      const state = bucketState(row, row.which === 'first' ? first.bucket : second.bucket, now);
      if (state.waitSeconds > 0) return { refused: row.which, state };
    }
    return { state: OPEN };
  }

  /**
   * Returns a use taken from a budget (takeFromBucket) that turned out not to count, as if it had
   * never been taken. Taking first and giving back after keeps parallel uses from passing a budget
   * together, where a count made after the check would let them all through.
   */
  async giveBack(name: string, { refillSeconds }: Bucket): Promise<void> {
    await sql`
      update throttle set locked_until = locked_until - make_interval(secs => ${refillSeconds}::float8)
      where key = ${storedKey(BUCKET_PREFIX + name)}`.execute(this.#db);
  }

  /**
   * The guess was wrong: count it and lock each key for the time its count brings. `alongside`
   * (the sign-in log's row) is written in the same statement, as in succeeded and release.
   */
  async failed(keys: ThrottleKey[], alongside?: OperationNodeSource): Promise<void> {
    const now = this.#clock.now();
    const counts = keys.map(({ key, rule }) => {
      const failures = sql<number>`(${failuresNow(rule.forgetAfterSeconds ?? null, now)} + 1)`;
      return sql`
        update throttle as t set
          failures = ${failures},
          locked_until = case when ${failures} >= ${rule.free}::int
            then ${now}::timestamptz + make_interval(secs => least(${rule.baseSeconds}::float8 * power(2, ${failures} - ${rule.free}::int), ${rule.maxSeconds}::float8))
            end,
          last_failure_at = ${now},
          pending = greatest(t.pending - 1, 0)
        where t.key = ${storedKey(key)} and ${inKeyOrder(keys)}`;
    });
    await this.#write(counts, alongside);
  }

  /**
   * The guess was right: the run of failures ends for the first key (the account); the others just
   * end the claim. One statement with `alongside`, as it is on every sign-in's path; inside a step's
   * turn (one-at-a-time.ts: a sign-in interaction's, a recovery flow's) it goes out with the statement
   * that ends the turn. Only a success waits so: if that statement fails, it is tried again while the
   * turn's hold lasts (one-at-a-time.ts), else the run of failures stays, `alongside` (a log row) is
   * not written and the claims end by themselves (PENDING_EXPIRY_SECONDS), as after a crash; a
   * failure's count, the brake on guessing, is written before the step answers.
   */
  async succeeded(keys: ThrottleKey[], alongside?: OperationNodeSource): Promise<void> {
    const [first, ...rest] = keys;
    const writes = [this.#clearing(first.key).where(inKeyOrder(keys)), ...(rest.length ? [this.#releasing(rest, keys)] : []), ...(alongside ? [alongside] : [])];
    if (!holdWrite(`throttle:${first.key}`, ...writes)) await inOneStatement(writes).execute(this.#db);
  }

  /** The guess was never checked (the server was too busy): the claims end, nothing is counted. */
  async release(keys: ThrottleKey[], alongside?: OperationNodeSource): Promise<void> {
    await this.#write(keys.length ? [this.#releasing(keys)] : [], alongside);
  }

  /** The throttle's writes and what goes with them, in one statement (each on its own row). */
  async #write(writes: OperationNodeSource[], alongside: OperationNodeSource | undefined): Promise<void> {
    const all = alongside ? [...writes, alongside] : writes;
    if (all.length) await inOneStatement(all).execute(this.#db);
  }

  /** Ends the claims on `keys`, locking the rows of `all` (the call's keys) in their order first. */
  #releasing(keys: ThrottleKey[], all = keys) {
    const stored = keys.map(({ key }) => storedKey(key));
    return sql`update throttle set pending = greatest(pending - 1, 0) where key in (${sql.join(stored)}) and ${inKeyOrder(all)}`;
  }

  async #state({ key, rule }: ThrottleKey): Promise<ThrottleState> {
    const row = await this.#db.selectFrom('throttle').selectAll().where('key', '=', storedKey(key)).executeTakeFirst();
    if (!row) return OPEN;
    if (rule.hardStop !== undefined && row.failures >= rule.hardStop) return { waitSeconds: 0, blocked: true };
    // Locked, or as many guesses in flight as the key allows: either way, a moment's wait.
    const until = row.locked_until ? new Date(row.locked_until).getTime() : 0;
    return { waitSeconds: Math.max(1, Math.ceil((until - this.#clock.now().getTime()) / 1000)), blocked: false };
  }

  /** A success ends the run of consecutive failures. */
  async clear(key: string): Promise<void> {
    await this.#clearing(key).execute();
  }

  #clearing(key: string) {
    return this.#db.deleteFrom('throttle').where('key', '=', storedKey(key));
  }

  /** Forgets counters that no longer matter; bounded like the other sweeps. */
  async deleteStale(limit: number): Promise<number> {
    const result = await sql`
      with doomed as (
        select key from throttle
        where (coalesce(last_failure_at, pending_since) < now() - interval '7 days' and failures < 100)
          or (key like ${`${BUCKET_PREFIX}%`} and locked_until < now())
        limit ${limit}
        -- A row a request holds is left for the next sweep: a statement that claims two rows (reserve,
        -- takeFromBuckets) never waits on the sweep while the sweep waits on it.
        for update skip locked
      )
      delete from throttle where key in (select key from doomed)`.execute(this.#db);
    return Number(result.numAffectedRows ?? 0);
  }
}

export const accountKey = (commonId: string): string => `account:${commonId}`;
/** Codes mailed to an account's recovery address (a reset's, a new address's): guessed like a second factor's. */
export const mailedCodeKey = (accountId: string): string => `code:email:${accountId}`;
/**
 * A per-address limit's key: the caller's source (its IPv4 address or IPv6 /64, throttle/source.ts),
 * under the limit's own scope (`recover`, `idv`) or none (password guesses).
 */
export const addressKey = (ip: string, scope?: 'recover' | 'idv'): string => `${scope ? `${scope}:` : ''}address:${sourceOf(ip)}`;
