import { sql, type Expression, type Kysely, type RawBuilder, type Selectable, type SqlBool } from 'kysely';
import type { DB, NoticeTable } from '../db/schema.ts';
import type { AccountRow } from '../account/account.store.ts';

export type NoticeRow = Selectable<NoticeTable>;

/** What an occasion's scan hands back: the account's addresses and the date the occasion is about. */
export type Candidate = Pick<AccountRow, 'id' | 'email' | 'email_verified' | 'recovery_email' | 'recovery_email_verified_at'> & { at: string };

export interface NewNotice {
  accountId: string;
  kind: string;
  occasion: string;
  recipient: string;
  details: Record<string, string>;
}

const DAY_MS = 86_400_000;
const plusDays = (now: Date, days: number) => new Date(now.getTime() + days * DAY_MS);

/** A time as the same ISO 8601 text on both databases and in JavaScript's toISOString. */
export function isoText(value: Expression<unknown> | RawBuilder<unknown>): RawBuilder<string> {
  return sql<string>`to_char(${value} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

/** The occasion key of a dated occasion: its date and the lead time ("2027-03-31T15:00:00.000Z/60d"). */
export function datedOccasion(at: string, days: number): string {
  return `${at}/${days}d`;
}

/**
 * The notice table: finding due occasions (each an index range with an anti-join on the notice
 * key, so a run that finds nothing new costs index probes, not a table scan), recording them once,
 * and claiming due mails so that two nodes never send the same one.
 */
export class NoticeStore {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  #candidates(kind: string, days: number, date: 'revoke_at' | 'password_set_at') {
    return this.#db
      .selectFrom('account as a')
      .select(['a.id', 'a.email', 'a.email_verified', 'a.recovery_email', 'a.recovery_email_verified_at'])
      .select(isoText(sql.ref(`a.${date}`)).as('at'))
      .where('a.status', '=', 'active')
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('notice as n')
              .select('n.id')
              .whereRef('n.account_id', '=', 'a.id')
              .where('n.kind', '=', kind)
              .where(sql<SqlBool>`n.occasion = ${isoText(sql.ref(`a.${date}`))} || ${`/${days}d`}`),
          ),
        ),
      );
  }

  /** Active accounts revoked in (now + `after` days, now + `days` days] with no notice for that lead yet. */
  revocationsDue(now: Date, days: number, after: number, limit: number): Promise<Candidate[]> {
    return this.#candidates('revocation', days, 'revoke_at').where('a.revoke_at', '>', plusDays(now, after)).where('a.revoke_at', '<=', plusDays(now, days)).limit(limit).execute();
  }

  /**
   * Active accounts without a second factor whose password, valid `maxAge` days, expires in
   * (now + `after` days, now + `days` days], with no notice for that lead yet.
   */
  expiriesDue(now: Date, maxAge: number, days: number, after: number, limit: number): Promise<Candidate[]> {
    return this.#candidates('password_expiry', days, 'password_set_at')
      .where('a.password_set_at', '>', plusDays(now, after - maxAge))
      .where('a.password_set_at', '<=', plusDays(now, days - maxAge))
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('mfa_factor as f').select('f.id').whereRef('f.account_id', '=', 'a.id'))))
      .limit(limit)
      .execute();
  }

  /**
   * The next active accounts without a second factor for a university-wide occasion, walked in id
   * order from the last account it was recorded for (one index probe), so that a million accounts
   * are visited once, a batch per call, rather than anti-joined on every run. Ids are random, so an
   * account created during the walk may land behind it: once the walk has reached the end, those
   * created since the occasion's first notice (less an hour's slack for the first batch) that have
   * none yet come too; they are few, found by when they were created.
   */
  async withoutMfaFor(kind: string, occasion: string, limit: number): Promise<Array<Omit<Candidate, 'at'>>> {
    const occasionRows = this.#db.selectFrom('notice').where('kind', '=', kind).where('occasion', '=', occasion);
    const last = await occasionRows.select('account_id').orderBy('account_id', 'desc').limit(1).executeTakeFirst();
    const walked = await this.#withoutMfa()
      .$if(last !== undefined, (q) => q.where('a.id', '>', last!.account_id))
      .orderBy('a.id')
      .limit(limit)
      .execute();
    if (!last || walked.length === limit) return walked;
    const first = await occasionRows.select('created_at').orderBy('created_at').limit(1).executeTakeFirstOrThrow();
    const stragglers = await this.#withoutMfa()
      .where('a.created_at', '>=', sql<Date>`${first.created_at}::timestamptz - interval '1 hour'`)
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('notice as n').select('n.id').whereRef('n.account_id', '=', 'a.id').where('n.kind', '=', kind).where('n.occasion', '=', occasion))))
      .limit(limit - walked.length)
      .execute();
    const seen = new Set(walked.map((row) => row.id));
    return [...walked, ...stragglers.filter((row) => !seen.has(row.id))];
  }

  #withoutMfa() {
    return this.#db
      .selectFrom('account as a')
      .select(['a.id', 'a.email', 'a.email_verified', 'a.recovery_email', 'a.recovery_email_verified_at'])
      .where('a.status', '=', 'active')
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('mfa_factor as f').select('f.id').whereRef('f.account_id', '=', 'a.id'))));
  }

  /** Records notices; one that exists already (another node found it first) is left as it is. Returns the new rows' ids. */
  async insert(notices: readonly NewNotice[], now: Date): Promise<string[]> {
    if (notices.length === 0) return [];
    // One order on every node: two nodes inserting the same keys in different orders could deadlock.
    const sorted = [...notices].sort((x, y) => (x.accountId + x.recipient < y.accountId + y.recipient ? -1 : 1));
    const rows = await this.#db
      .insertInto('notice')
      .values(
        sorted.map((n) => ({
          account_id: n.accountId,
          kind: n.kind,
          occasion: n.occasion,
          recipient: n.recipient,
          details: JSON.stringify(n.details),
          next_attempt_at: now,
          status: n.recipient === 'none' ? 'dropped' : 'pending',
        })),
      )
      .onConflict((oc) => oc.constraint('notice_occasion_key').doNothing())
      .returning('id')
      .execute();
    return rows.map((r) => r.id);
  }

  /**
   * Takes up to `limit` due pending notices (or just `ids`, never empty) for this node: one UPDATE that skips rows
   * another node holds and moves their next try past a lease, so nobody else takes them meanwhile.
   */
  claim(now: Date, leaseUntil: Date, limit: number, ids?: readonly string[]): Promise<NoticeRow[]> {
    return this.#db
      .updateTable('notice')
      .set((eb) => ({ attempts: eb('attempts', '+', 1), next_attempt_at: leaseUntil }))
      .where('id', 'in', (eb) => {
        let due = eb.selectFrom('notice').select('id').where('status', '=', 'pending').where('next_attempt_at', '<=', now);
        if (ids) due = due.where('id', 'in', ids);
        return due.orderBy('next_attempt_at').limit(limit).forUpdate().skipLocked();
      })
      .returningAll()
      .execute();
  }

  /** Gives back claimed notices that were not tried (while still claimed by `leaseUntil`): due again at `due`, their claim not counted as an attempt. */
  async release(ids: readonly string[], leaseUntil: Date, due: Date): Promise<void> {
    if (ids.length === 0) return;
    await this.#db
      .updateTable('notice')
      .set((eb) => ({ attempts: eb('attempts', '-', 1), next_attempt_at: due }))
      .where('id', 'in', ids)
      .where('status', '=', 'pending')
      .where('next_attempt_at', '=', leaseUntil)
      .execute();
  }

  account(accountId: string): Promise<AccountRow | undefined> {
    return this.#db.selectFrom('account').selectAll().where('id', '=', accountId).executeTakeFirst();
  }

  /**
   * The account as it is now, if the occasion still holds: `date` still the one the notice is about
   * (and the account active), `active`, `withoutMfa` (no second factor yet).
   */
  async accountFor(notice: NoticeRow, holds: { date?: 'revoke_at' | 'password_set_at'; active?: boolean; withoutMfa?: boolean }): Promise<AccountRow | undefined> {
    let query = this.#db.selectFrom('account as a').selectAll('a').where('a.id', '=', notice.account_id);
    if (holds.date) query = query.where(isoText(sql.ref(`a.${holds.date}`)), '=', notice.details.at);
    if (holds.date || holds.active) query = query.where('a.status', '=', 'active');
    if (holds.withoutMfa) query = query.where(({ not, exists, selectFrom }) => not(exists(selectFrom('mfa_factor as f').select('f.id').whereRef('f.account_id', '=', 'a.id'))));
    return query.executeTakeFirst();
  }

  async finish(id: string, outcome: { status: 'sent' | 'dropped' | 'failed' | 'pending'; at: Date; sentTo?: string; error?: string; retryAt?: Date }): Promise<void> {
    await this.#db
      .updateTable('notice')
      .set({
        status: outcome.status,
        sent_at: outcome.status === 'sent' ? outcome.at : null,
        sent_to: outcome.sentTo ?? null,
        last_error: outcome.error ?? null,
        ...(outcome.retryAt ? { next_attempt_at: outcome.retryAt } : {}),
      })
      .where('id', '=', id)
      .execute();
  }

  forAccount(accountId: string): Promise<NoticeRow[]> {
    return this.#db.selectFrom('notice').selectAll().where('account_id', '=', accountId).orderBy('created_at').orderBy('kind').execute();
  }
}
