import type { Expression, Kysely, OperationNodeSource, Selectable, SqlBool } from 'kysely';
import type { DB, SigninEventTable } from '../db/schema.ts';
import type { SigninReason } from './signin-reasons.ts';
import { NO_METER, type Meter } from '../metrics/meter.ts';

export type SigninEvent = Selectable<SigninEventTable>;

export interface SigninAttempt {
  accountId: string | null;
  clientId: string | null;
  ip: string | null;
  userAgent: string | null;
  result: 'success' | 'failure';
  /** How it succeeded or why it failed: one of src/audit/signin-reasons.ts. */
  reason: SigninReason;
}

/**
 * Every sign-in attempt, kept in Postgres for the person, the help desk and incident response, and
 * counted for the metrics here, where every path of sign-in passes.
 */
export class SigninLog {
  readonly #db: Kysely<DB>;
  readonly #meter: Meter;

  constructor(db: Kysely<DB>, meter: Meter = NO_METER) {
    this.#db = db;
    this.#meter = meter;
  }

  /**
   * Records an attempt. `together` writes the row inside another write's statement (the throttle's
   * outcome of the same attempt: login-throttle.ts), so both take one round trip.
   */
  async record(attempt: SigninAttempt, together?: (insert: OperationNodeSource) => Promise<void>): Promise<void> {
    const insert = this.#db.insertInto('signin_event').values({
      account_id: attempt.accountId,
      client_id: attempt.clientId?.slice(0, 200) ?? null,
      ip: attempt.ip?.slice(0, 100) ?? null,
      user_agent: attempt.userAgent?.slice(0, 500) ?? null,
      result: attempt.result,
      reason: attempt.reason,
    });
    await (together ? together(insert) : insert.execute());
    this.#meter.signin(attempt.result, attempt.reason);
  }

  list(filter: { accountId?: string; since?: Date; within?: Expression<SqlBool>; limit: number }): Promise<Array<SigninEvent & { common_id: string | null }>> {
    let query = this.#db
      .selectFrom('signin_event')
      .leftJoin('account', 'account.id', 'signin_event.account_id')
      .selectAll('signin_event')
      .select('account.common_id')
      .orderBy('signin_event.occurred_at', 'desc')
      .orderBy('signin_event.id', 'desc')
      .limit(filter.limit);
    if (filter.accountId) query = query.where('signin_event.account_id', '=', filter.accountId);
    // A condition on the joined account (an operator's scope): events of no account fall outside it.
    if (filter.within) query = query.where(filter.within);
    if (filter.since) query = query.where('signin_event.occurred_at', '>=', filter.since);
    return query.execute();
  }
}
