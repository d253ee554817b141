import type { Expression, Kysely, Selectable, SqlBool } from 'kysely';
import type { DB, SigninEventTable } from '../db/schema.ts';

export type SigninEvent = Selectable<SigninEventTable>;

export interface SigninAttempt {
  accountId: string | null;
  clientId: string | null;
  ip: string | null;
  userAgent: string | null;
  result: 'success' | 'failure';
  /** A snake_case reason code: success, wrong_password, unknown_account, locked, account_suspended ... */
  reason: string;
}

/** Every sign-in attempt, kept in Postgres for the person, the help desk and incident response. */
export class SigninLog {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  async record(attempt: SigninAttempt): Promise<void> {
    await this.#db
      .insertInto('signin_event')
      .values({
        account_id: attempt.accountId,
        client_id: attempt.clientId?.slice(0, 200) ?? null,
        ip: attempt.ip?.slice(0, 100) ?? null,
        user_agent: attempt.userAgent?.slice(0, 500) ?? null,
        result: attempt.result,
        reason: attempt.reason,
      })
      .execute();
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
