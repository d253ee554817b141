import { sql, type Expression, type ExpressionBuilder, type Kysely, type SqlBool } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/database.ts';
import type { DB } from '../db/schema.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Clock } from '../shared/clock.ts';
import { DomainError } from '../shared/errors.ts';
import { databaseAway, tellingAlongside } from '../db/driver.ts';
import { inCalendarRange, startOfDay } from '../shared/time-zone.ts';
import { excerpt } from '../shared/text.ts';
import type { AccountService } from './account.service.ts';
import type { AccountRow, AccountStore } from './account.store.ts';

const REASON_PATTERN = /^[\p{L}\p{N} ._:/-]{1,100}$/u;

/** A revocation time from an operator: a date means its start in the university's time zone. */
export function revocationTime(value: unknown, timeZone: string, what = 'on'): Date {
  if (typeof value !== 'string') throw new DomainError('invalid_request', `${what} must be a date such as 2027-03-31`);
  const date = /^\d{4}-\d{2}-\d{2}$/.test(value) ? startOfDay(value, timeZone) : new Date(value);
  if (!inCalendarRange(date) || !/^\d{4}-\d{2}-\d{2}/.test(value)) throw new DomainError('invalid_request', `${what} must be a date such as 2027-03-31, got "${excerpt(value)}"`);
  return date;
}

export function revocationReason(value: unknown): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string' || !REASON_PATTERN.test(value)) throw new DomainError('invalid_request', 'reason must be 1 to 100 letters, digits, spaces or ._:/- (such as graduation)');
  return value;
}

/**
 * Revocation at a set time (a graduating cohort on 31 March, a contract's end): operators schedule
 * it, and the lifecycle job applies what is due on every run. Applying it is the same as an
 * immediate revocation: sessions and refresh tokens end at once and back-channel relying parties
 * are told.
 */
export class Revocations {
  readonly #db: Kysely<DB>;
  readonly #accounts: AccountStore;
  readonly #accountService: AccountService;
  readonly #audit: AuditLog;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #unitOfWork: Database['unitOfWork'];

  constructor(deps: {
    db: Kysely<DB>;
    unitOfWork: Database['unitOfWork'];
    accounts: AccountStore;
    accountService: AccountService;
    audit: AuditLog;
    clock: Clock;
    logger: Logger;
  }) {
    this.#db = deps.db;
    this.#accounts = deps.accounts;
    this.#accountService = deps.accountService;
    this.#audit = deps.audit;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#unitOfWork = deps.unitOfWork;
  }

  async schedule(commonId: string, at: Date, reason: string | null): Promise<AccountRow> {
    const account = await this.#accountService.get(commonId);
    if (account.status === 'revoked') throw new DomainError('already_revoked', `account ${commonId} is already revoked`);
    if (at.getTime() < this.#clock.now().getTime() - 86_400_000) throw new DomainError('invalid_request', 'that date has passed; revoke without a date to revoke now');
    await this.#db
      .updateTable('account')
      .set({ revoke_at: at, revoke_reason: reason, updated_at: sql<Date>`now()` as never })
      .where('id', '=', account.id)
      .execute();
    return (await this.#accounts.findById(account.id))!;
  }

  async cancel(commonId: string): Promise<AccountRow> {
    const account = await this.#accountService.get(commonId);
    const notScheduled = new DomainError('not_scheduled', `account ${commonId} has no scheduled revocation`);
    if (!account.revoke_at) throw notScheduled;
    // Only while it is still scheduled: a revocation applied meanwhile (the job got there first) stays.
    const cancelled = await this.#db
      .updateTable('account')
      .set({ revoke_at: null, revoke_reason: null, updated_at: sql<Date>`now()` as never })
      .where('id', '=', account.id)
      .where('revoke_at', 'is not', null)
      .where('status', '!=', 'revoked')
      .executeTakeFirst();
    if (Number(cancelled.numUpdatedRows) === 0) throw notScheduled;
    return (await this.#accounts.findById(account.id))!;
  }

  /** Accounts with a revocation scheduled up to `until` (all of them without it), soonest first. */
  scheduled(filter: { until?: Date; limit: number; after?: string; within?: Expression<SqlBool> }): Promise<AccountRow[]> {
    let query = this.#db.selectFrom('account').selectAll().where('revoke_at', 'is not', null).orderBy('revoke_at').orderBy('common_id').limit(filter.limit);
    if (filter.within) query = query.where(filter.within);
    if (filter.until) query = query.where('revoke_at', '<=', filter.until);
    if (filter.after) query = query.where('common_id', '>', filter.after);
    return query.execute();
  }

  /**
   * Revokes up to `batch` accounts whose time has come, each in a transaction of its own: the end
   * of its sessions, its status and its audit record land together or not at all. An account whose
   * revocation failed stays due for the next run and the others go on, unless the database is away
   * (then the rest would only wait for it: the next run starts again). Answers how many it revoked.
   */
  async applyDue(batch: number): Promise<number> {
    // Each account's relying parties are told beside the next accounts' revocations: one that hangs does not hold up the rest.
    return tellingAlongside(() => this.#applyDue(batch));
  }

  async #applyDue(batch: number): Promise<number> {
    const now = this.#clock.now();
    const due = await this.#db.selectFrom('account').select('id').where('revoke_at', '<=', now).where('status', '!=', 'revoked').orderBy('revoke_at').limit(batch).execute();
    let applied = 0;
    let failure: { error: unknown } | undefined;
    for (const { id } of due) {
      try {
        if (
          await this.#unitOfWork(
            () => this.#applyOne(id, now),
            (done) => done,
          )
        )
          applied += 1;
      } catch (error) {
        failure ??= { error };
        this.#logger.warn({ accountId: id, err: { message: (error as Error).message } }, 'scheduled revocation failed; it stays due for the next run');
        if (databaseAway(error)) break;
      }
    }
    if (applied) this.#logger.info({ revoked: applied }, 'scheduled revocations applied');
    if (failure) throw failure.error;
    return applied;
  }

  /**
   * One due account's revocation; false when it is no longer due (cancelled, or applied by another
   * node meanwhile: the unit then rolls back the sessions' end). The account row is claimed as the
   * change of endingSessions, after the sessions, in the order every session-ending change takes.
   */
  async #applyOne(id: string, now: Date): Promise<boolean> {
    const stillDue = (eb: ExpressionBuilder<DB, 'account'>) => eb.and([eb('id', '=', id), eb('revoke_at', '<=', now), eb('status', '!=', 'revoked')]);
    if (!(await this.#db.selectFrom('account').select('id').where(stillDue).executeTakeFirst())) return false;
    let account: { id: string; revoke_reason: string | null } | undefined;
    const ended = await this.#accountService.endingSessions(id, async () => {
      account = await this.#db
        .updateTable('account')
        .set({ status: 'revoked', revoked_at: now, revoke_at: null, updated_at: sql<Date>`now()` as never })
        .where(stillDue)
        .returning(['id', 'revoke_reason'])
        .executeTakeFirst();
    });
    if (!account) return false;
    await this.#audit.record({ actor: 'system', action: 'account.revoked', accountId: account.id, details: { scheduled: true, reason: account.revoke_reason, endedSessions: ended } });
    return true;
  }
}
