import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { DB } from '../db/schema.ts';
import type { Clock } from '../shared/clock.ts';
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

/** Keys counted per window (countInWindow): their rows go as soon as their window has closed. */
const WINDOW_PREFIX = 'window:';

/** A reservation whose request died (a node crashed mid-check) stops counting after this. */
const PENDING_EXPIRY_SECONDS = THROTTLE_RESERVATION_SECONDS;

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
    const claimed: ThrottleKey[] = [];
    for (const key of keys) {
      if (await this.#claim(key)) {
        claimed.push(key);
        continue;
      }
      await this.release(claimed);
      return this.#state(key);
    }
    return OPEN;
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
   * A cap rather than a lock: at most `limit` uses of `name` per window of `windowSeconds`, the
   * window opened by its first use. Unlike the failure counts above it never slows a steady use
   * below the cap and never serialises parallel uses, so it suits counting what a whole campus
   * behind one NAT address legitimately does. One atomic statement counts and decides, so parallel
   * requests on any node cannot pass the cap together; a refused use changes nothing.
   * (The row's `failures` is the count in the window, `last_failure_at` when it opened and
   * `locked_until` when it closes; the sweep removes the row once it has.)
   */
  async countInWindow(name: string, limit: number, windowSeconds: number): Promise<ThrottleState> {
    const now = this.#clock.now();
    const closes = sql<Date>`${now}::timestamptz + make_interval(secs => ${windowSeconds}::int)`;
    const open = sql<boolean>`t.locked_until > ${now}::timestamptz`;
    const { rows } = await sql<{ failures: number; locked_until: Date | string }>`
      insert into throttle as t (key, failures, last_failure_at, locked_until)
      values (${WINDOW_PREFIX + name}, 1, ${now}, ${closes})
      on conflict (key) do update set
        failures = case when ${open} then least(t.failures + 1, ${limit + 1}::int) else 1 end,
        last_failure_at = case when ${open} then t.last_failure_at else ${now}::timestamptz end,
        locked_until = case when ${open} then t.locked_until else ${closes} end
      returning failures, locked_until`.execute(this.#db);
    const [row] = rows;
    if (row.failures <= limit) return OPEN;
    return { waitSeconds: Math.max(1, Math.ceil((new Date(row.locked_until).getTime() - now.getTime()) / 1000)), blocked: false };
  }

  /** The guess was wrong: count it and lock the key for the time its count brings. */
  async failed(keys: ThrottleKey[]): Promise<void> {
    const now = this.#clock.now();
    for (const { key, rule } of keys) {
      const failures = sql<number>`(${this.#failuresNow(rule, now)} + 1)`;
      await sql`
        update throttle as t set
          failures = ${failures},
          locked_until = case when ${failures} >= ${rule.free}::int
            then ${now}::timestamptz + make_interval(secs => least(${rule.baseSeconds}::float8 * power(2, ${failures} - ${rule.free}::int), ${rule.maxSeconds}::float8))
            end,
          last_failure_at = ${now},
          pending = greatest(t.pending - 1, 0)
        where t.key = ${key}`.execute(this.#db);
    }
  }

  /** The guess was right: the run of failures ends for the first key (the account); the others just end the claim. */
  async succeeded(keys: ThrottleKey[]): Promise<void> {
    const [first, ...rest] = keys;
    await this.clear(first.key);
    await this.release(rest);
  }

  /** The guess was never checked (the server was too busy): the claims end, nothing is counted. */
  async release(keys: ThrottleKey[]): Promise<void> {
    for (const { key } of keys) {
      await sql`update throttle set pending = greatest(pending - 1, 0) where key = ${key}`.execute(this.#db);
    }
  }

  /** Failures that still count: a rule may forget them after a quiet period. */
  #failuresNow(rule: ThrottleRule, now: Date): RawBuilder<number> {
    const forget = rule.forgetAfterSeconds ?? null;
    return sql<number>`(case
      when ${forget}::int is not null and t.last_failure_at < ${now}::timestamptz - make_interval(secs => ${forget}::int) then 0
      else t.failures end)`;
  }

  async #claim({ key, rule }: ThrottleKey): Promise<boolean> {
    const now = this.#clock.now();
    const failures = this.#failuresNow(rule, now);
    const pending = sql<number>`(case when t.pending_since < ${now}::timestamptz - make_interval(secs => ${PENDING_EXPIRY_SECONDS}) then 0 else t.pending end)`;
    const result = await sql`
      insert into throttle as t (key, failures, pending, pending_since) values (${key}, 0, 1, ${now})
      on conflict (key) do update set failures = ${failures}, pending = ${pending} + 1, pending_since = ${now}
      where (t.locked_until is null or t.locked_until <= ${now})
        and (${rule.hardStop ?? null}::int is null or t.failures < ${rule.hardStop ?? null}::int)
        and (${failures} + ${pending} < ${rule.free}::int or ${pending} = 0)
      returning t.key`.execute(this.#db);
    return result.rows.length > 0;
  }

  async #state({ key, rule }: ThrottleKey): Promise<ThrottleState> {
    const row = await this.#db.selectFrom('throttle').selectAll().where('key', '=', key).executeTakeFirst();
    if (!row) return OPEN;
    if (rule.hardStop !== undefined && row.failures >= rule.hardStop) return { waitSeconds: 0, blocked: true };
    // Locked, or as many guesses in flight as the key allows: either way, a moment's wait.
    const until = row.locked_until ? new Date(row.locked_until).getTime() : 0;
    return { waitSeconds: Math.max(1, Math.ceil((until - this.#clock.now().getTime()) / 1000)), blocked: false };
  }

  /** A success ends the run of consecutive failures. */
  async clear(key: string): Promise<void> {
    await this.#db.deleteFrom('throttle').where('key', '=', key).execute();
  }

  /** Forgets counters that no longer matter; bounded like the other sweeps. */
  async deleteStale(limit: number): Promise<number> {
    const result = await sql`
      with doomed as (
        select key from throttle
        where (coalesce(last_failure_at, pending_since) < now() - interval '7 days' and failures < 100)
          or (key like ${`${WINDOW_PREFIX}%`} and locked_until < now())
        limit ${limit}
      )
      delete from throttle where key in (select key from doomed)`.execute(this.#db);
    return Number(result.numAffectedRows ?? 0);
  }
}

export const accountKey = (commonId: string): string => `account:${commonId}`;
export const addressKey = (ip: string): string => `address:${ip}`;
