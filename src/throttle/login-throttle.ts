import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import type { Clock } from '../shared/clock.ts';

/**
 * Brute-force protection for guessable secrets, counted in Postgres so that it holds across nodes.
 * A key counts consecutive failures; past `free` failures each further failure locks the key for a
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

  /** The strictest state over the keys. */
  async check(keys: ThrottleKey[]): Promise<ThrottleState> {
    const rows = await this.#db.selectFrom('throttle').selectAll().where('key', 'in', keys.map((k) => k.key)).execute();
    const now = this.#clock.now().getTime();
    let state = OPEN;
    for (const row of rows) {
      const rule = keys.find((k) => k.key === row.key)!.rule;
      if (rule.hardStop !== undefined && row.failures >= rule.hardStop) return { waitSeconds: 0, blocked: true };
      const until = row.locked_until ? new Date(row.locked_until).getTime() : 0;
      const wait = Math.ceil((until - now) / 1000);
      if (wait > state.waitSeconds) state = { waitSeconds: wait, blocked: false };
    }
    return state;
  }

  async recordFailure(keys: ThrottleKey[]): Promise<void> {
    const now = this.#clock.now();
    for (const { key, rule } of keys) {
      const forget = rule.forgetAfterSeconds ?? null;
      // One statement per key: concurrent failures on other nodes each add exactly one.
      await sql`
        insert into throttle as t (key, failures, last_failure_at, locked_until)
        values (${key}, 1, ${now}, null)
        on conflict (key) do update set
          failures = case
            when ${forget}::int is not null and t.last_failure_at < ${now}::timestamptz - make_interval(secs => ${forget}::int) then 1
            else t.failures + 1 end,
          last_failure_at = ${now}`.execute(this.#db);
      const row = await this.#db.selectFrom('throttle').select('failures').where('key', '=', key).executeTakeFirstOrThrow();
      const seconds = lockSeconds(row.failures, rule);
      if (seconds > 0) {
        await this.#db.updateTable('throttle')
          .set({ locked_until: new Date(now.getTime() + seconds * 1000) })
          .where('key', '=', key).execute();
      }
    }
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
