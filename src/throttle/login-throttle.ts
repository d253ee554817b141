import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { DB } from '../db/schema.ts';
import type { Clock } from '../shared/clock.ts';

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
export const ACCOUNT_RULE: ThrottleRule = { free: 5, baseSeconds: 30, maxSeconds: 3600, hardStop: 100 };
/** Per source address: generous, since a whole campus can sit behind one NAT address. */
export const ADDRESS_RULE: ThrottleRule = { free: 30, baseSeconds: 10, maxSeconds: 900, forgetAfterSeconds: 3600 };

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

export class LoginThrottle {
  readonly #db: Kysely<DB>;
  readonly #clock: Clock;

  constructor(db: Kysely<DB>, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  /**
   * Counts an attempt before the secret is checked, in one statement per key that refuses while
   * the key is locked. Concurrent attempts queue on the row, so parallel guesses cannot all slip
   * through before the first failure is written. A success gives the count back (`succeeded`).
   */
  async reserve(keys: ThrottleKey[]): Promise<ThrottleState> {
    const reserved: ThrottleKey[] = [];
    for (const key of keys) {
      if (await this.#reserveOne(key)) {
        reserved.push(key);
        continue;
      }
      for (const done of reserved) await this.#giveBack(done.key);
      return this.#state(key);
    }
    return OPEN;
  }

  /** The attempt never happened (the server was too busy to check it): every key gets it back. */
  async release(keys: ThrottleKey[]): Promise<void> {
    for (const key of keys) await this.#giveBack(key.key);
  }

  /** The attempt succeeded: the account's run of failures ends, the other keys get theirs back. */
  async succeeded(keys: ThrottleKey[]): Promise<void> {
    const [first, ...rest] = keys;
    await this.clear(first.key);
    for (const key of rest) await this.#giveBack(key.key);
  }

  async #reserveOne({ key, rule }: ThrottleKey): Promise<boolean> {
    const now = this.#clock.now();
    const forget = rule.forgetAfterSeconds ?? null;
    const hardStop = rule.hardStop ?? null;
    // The count after this attempt, and the lock that count brings (the SQL twin of lockSeconds).
    const next = sql`(case
      when ${forget}::int is not null and t.last_failure_at < ${now}::timestamptz - make_interval(secs => ${forget}::int) then 1
      else t.failures + 1 end)`;
    const lockFor = (failures: RawBuilder<unknown>) => sql`case when ${failures} >= ${rule.free}::int
      then ${now}::timestamptz + make_interval(secs => least(${rule.baseSeconds}::float8 * power(2, ${failures} - ${rule.free}::int), ${rule.maxSeconds}::float8))
      end`;
    const result = await sql<{ failures: number }>`
      insert into throttle as t (key, failures, last_failure_at, locked_until)
      values (${key}, 1, ${now}, ${lockFor(sql`1`)})
      on conflict (key) do update set failures = ${next}, last_failure_at = ${now}, locked_until = ${lockFor(next)}
      where (t.locked_until is null or t.locked_until <= ${now})
        and (${hardStop}::int is null or t.failures < ${hardStop}::int)
      returning t.failures`.execute(this.#db);
    return result.rows.length > 0;
  }

  async #giveBack(key: string): Promise<void> {
    await this.#db.updateTable('throttle').set((eb) => ({ failures: sql`greatest(${eb.ref('failures')} - 1, 0)` }))
      .where('key', '=', key).execute();
  }

  async #state({ key, rule }: ThrottleKey): Promise<ThrottleState> {
    const row = await this.#db.selectFrom('throttle').selectAll().where('key', '=', key).executeTakeFirst();
    if (!row) return OPEN;
    if (rule.hardStop !== undefined && row.failures >= rule.hardStop) return { waitSeconds: 0, blocked: true };
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
        where last_failure_at < now() - interval '7 days' and failures < 100
        limit ${limit}
      )
      delete from throttle where key in (select key from doomed)`.execute(this.#db);
    return Number(result.numAffectedRows ?? 0);
  }
}

export const accountKey = (commonId: string): string => `account:${commonId}`;
export const addressKey = (ip: string): string => `address:${ip}`;
