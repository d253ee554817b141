import { sql, type Kysely } from 'kysely';
import type { DB, FactorKind } from '../db/schema.ts';

/** One group of active accounts: everyone, one affiliation, or one top-level department. */
export interface AccountGroupCount {
  dimension: 'all' | 'affiliation' | 'department';
  /** The affiliation or top-level department; '' for "all" and for accounts without a department. */
  value: string;
  active: number;
  withMfa: number;
  /** Passed the security education of the academic year asked for. */
  passed: number;
  /** Accounts with at least one factor of each kind (an account with two kinds counts in both). */
  byKind: Record<FactorKind, number>;
}

export interface SnapshotRow {
  day: string;
  dimension: AccountGroupCount['dimension'];
  value: string;
  active: number;
  withMfa: number;
}

/**
 * The dashboard's SQL: every figure is aggregated in the database (one pass over the accounts for
 * adoption and education together), so a page costs a few grouped scans, not a million rows.
 */
export class DashboardStore {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  /**
   * Active accounts with MFA, with each kind of factor and with this year's education, overall, by
   * affiliation and by top-level department, in one scan: GROUPING SETS gives the three groupings of
   * the same rows. Factors are first folded to one row per account, so both joins are hash joins
   * over at most one row per account, never a lookup per row.
   */
  async accountGroups(academicYear: number): Promise<AccountGroupCount[]> {
    const { rows } = await sql<Omit<AccountGroupCount, 'byKind'> & Record<FactorKind, number>>`
      select case when grouping(affiliation) = 0 then 'affiliation' when grouping(unit) = 0 then 'department' else 'all' end as dimension,
             case when grouping(affiliation) = 0 then affiliation when grouping(unit) = 0 then unit else '' end as value,
             count(*)::int as active,
             count(*) filter (where has_mfa)::int as "withMfa",
             count(*) filter (where passed)::int as passed,
             count(*) filter (where totp)::int as totp,
             count(*) filter (where webauthn)::int as webauthn,
             count(*) filter (where phone)::int as phone,
             count(*) filter (where token)::int as token
        from (select a.affiliation,
                     split_part(coalesce(a.department, ''), '/', 1) as unit,
                     m.account_id is not null as has_mfa,
                     m.totp, m.webauthn, m.phone, m.token,
                     e.account_id is not null as passed
                from account a
                left join (select account_id,
                                  bool_or(kind = 'totp') as totp,
                                  bool_or(kind = 'webauthn') as webauthn,
                                  bool_or(kind = 'phone') as phone,
                                  bool_or(kind = 'token') as token
                             from mfa_factor group by account_id) m on m.account_id = a.id
                left join security_education e on e.account_id = a.id and e.academic_year = ${academicYear}
               where a.status = 'active') t
       group by grouping sets ((), (affiliation), (unit))
       order by 1, 2`.execute(this.#db);
    return rows.map(({ totp, webauthn, phone, token, ...group }) => ({ ...group, byKind: { totp, webauthn, phone, token } }));
  }

  /** Whether the day's snapshot was taken (its "all" row is written with the rest, in one statement). */
  async hasSnapshot(day: string): Promise<boolean> {
    const row = await this.#db.selectFrom('mfa_snapshot').select('day').where('day', '=', day).where('dimension', '=', 'all').where('value', '=', '').executeTakeFirst();
    return row !== undefined;
  }

  /**
   * Writes a day's rows in one statement; a row the day already has is left alone, so a second run
   * or a second node racing this one adds nothing. Returns the rows written.
   */
  async writeSnapshot(day: string, groups: readonly AccountGroupCount[]): Promise<number> {
    if (!groups.length) return 0;
    const written = await this.#db
      .insertInto('mfa_snapshot')
      .values(groups.map((g) => ({ day, dimension: g.dimension, value: g.value, active_accounts: g.active, mfa_accounts: g.withMfa })))
      .onConflict((oc) => oc.columns(['day', 'dimension', 'value']).doNothing())
      .returning('day')
      .execute();
    return written.length;
  }

  /** The snapshots from `since` (a YYYY-MM-DD day) on, oldest first. */
  async snapshots(since: string): Promise<SnapshotRow[]> {
    return this.#db
      .selectFrom('mfa_snapshot')
      .select(['day', 'dimension', 'value', 'active_accounts as active', 'mfa_accounts as withMfa'])
      .where('day', '>=', since)
      .orderBy('day')
      .orderBy('dimension')
      .orderBy('value')
      .execute();
  }

  /**
   * Sign-ins refused by a client's access rules since `since` (recorded as access_denied.<rule> in
   * the sign-in log): distinct accounts and attempts per client and rule.
   */
  async accessDenials(since: Date): Promise<Array<{ clientId: string | null; clientName: string | null; clientNameJa: string | null; rule: string; accounts: number; attempts: number }>> {
    return this.#db
      .selectFrom('signin_event as e')
      .leftJoin('client as c', 'c.client_id', 'e.client_id')
      .where('e.result', '=', 'failure')
      .where('e.occurred_at', '>=', since)
      .where('e.reason', 'like', 'access_denied.%')
      .groupBy(['e.client_id', 'c.name', 'c.name_ja', 'e.reason'])
      .select([
        'e.client_id as clientId',
        'c.name as clientName',
        'c.name_ja as clientNameJa',
        sql<string>`substr(e.reason, ${'access_denied.'.length + 1})`.as('rule'),
        sql<number>`count(distinct e.account_id)::int`.as('accounts'),
        sql<number>`count(*)::int`.as('attempts'),
      ])
      .orderBy('accounts', 'desc')
      .orderBy('attempts', 'desc')
      .orderBy('e.client_id')
      .orderBy('e.reason')
      .execute();
  }

  /** Failed sign-ins since `since`, by reason code. */
  async failuresByReason(since: Date): Promise<Array<{ reason: string; count: number }>> {
    return this.#db
      .selectFrom('signin_event')
      .where('result', '=', 'failure')
      .where('occurred_at', '>=', since)
      .groupBy('reason')
      .select(['reason', sql<number>`count(*)::int`.as('count')])
      .orderBy('count', 'desc')
      .orderBy('reason')
      .execute();
  }

  /**
   * Accounts not yet revoked with a revocation scheduled in each interval [bounds[i], bounds[i+1]):
   * the counts, one per interval. width_bucket sorts each time into its interval in the database.
   */
  async revocationsBetween(bounds: readonly Date[]): Promise<number[]> {
    const iso = bounds.map((b) => b.toISOString());
    const { rows } = await sql<{ bucket: number; accounts: number }>`
      select width_bucket(revoke_at, ${iso}::timestamptz[]) as bucket, count(*)::int as accounts
        from account
       where revoke_at >= ${iso[0]}::timestamptz and revoke_at < ${iso.at(-1)}::timestamptz and status <> 'revoked'
       group by 1`.execute(this.#db);
    const counts = new Array<number>(bounds.length - 1).fill(0);
    for (const row of rows) counts[row.bucket - 1] = row.accounts;
    return counts;
  }
}
