import type { Expression, Kysely, Selectable, SqlBool } from 'kysely';
import type { AuditEventTable, DB } from '../db/schema.ts';

export type AuditEvent = Selectable<AuditEventTable> & { common_id: string | null };

export interface AuditEntry {
  actor: string;
  action: string;
  accountId?: string | null;
  /** Never a secret: names, serials, who checked what. */
  details?: Record<string, unknown>;
}

/** Who changed what on an account: operators' actions and the person's own security changes. */
export class AuditLog {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  async record(entry: AuditEntry): Promise<void> {
    await this.#db
      .insertInto('audit_event')
      .values({
        actor: entry.actor.slice(0, 200),
        action: entry.action,
        account_id: entry.accountId ?? null,
        details: JSON.stringify(entry.details ?? {}),
      })
      .execute();
  }

  list(filter: { accountId?: string; within?: Expression<SqlBool>; limit: number }): Promise<AuditEvent[]> {
    let query = this.#db
      .selectFrom('audit_event')
      .leftJoin('account', 'account.id', 'audit_event.account_id')
      .selectAll('audit_event')
      .select('account.common_id')
      .orderBy('audit_event.occurred_at', 'desc')
      .orderBy('audit_event.id', 'desc')
      .limit(filter.limit);
    if (filter.accountId) query = query.where('audit_event.account_id', '=', filter.accountId);
    // A condition on the joined account (an operator's scope): events of no account fall outside it.
    if (filter.within) query = query.where(filter.within);
    return query.execute();
  }
}
