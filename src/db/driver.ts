import { AsyncLocalStorage } from 'node:async_hooks';
import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import type pg from 'pg';
import { DatabaseUnavailableError } from '../shared/errors.ts';
import { DATABASE_RETRY_AFTER_SECONDS } from '../config/defaults.ts';
import { isStalePrepared, prepareAfresh, preparedName } from './prepared.ts';

/**
 * SQLSTATEs that say "the database cannot answer now", not "this statement is wrong": connection
 * exceptions (08), insufficient resources (53, e.g. too many connections), operator intervention
 * (57: shutdown, restart, statement_timeout's cancel), lock_timeout (55P03), an expired idle
 * transaction (25P03), and serialization failures and deadlocks (40001, 40P01), where a retry wins.
 */
const UNAVAILABLE_SQLSTATE = /^(08|53|57|55P03|25P03|40001|40P01)/;
/**
 * Of those, the SQLSTATEs after which the session goes on (the statement was refused, cancelled or
 * chosen as a deadlock's victim; the server is short of memory or disk): its connection is lent
 * again once its transaction is rolled back. Destroying it would cost PostgreSQL a new session for
 * nothing and leave PGlite, whose one session cannot be opened twice, answering the next requests
 * "connection terminated".
 */
const SESSION_SURVIVES_SQLSTATE = /^(53|57014|55P03|40001|40P01)/;
/** What node-postgres and the socket say when the server is gone, refuses, or does not answer. */
const UNAVAILABLE_MESSAGE = /Connection terminated|timeout exceeded when trying to connect|Query read timeout|not queryable|Connection ended|Client was closed|ECONNREFUSED|ECONNRESET/;
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

export function isUnavailable(error: unknown): boolean {
  if (error instanceof DatabaseUnavailableError) return true;
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (UNAVAILABLE_ERRNO.has(code) || (code.length === 5 && UNAVAILABLE_SQLSTATE.test(code)))) return true;
  return typeof message === 'string' && UNAVAILABLE_MESSAGE.test(message);
}

/** A failure that ended the session itself (the socket, the server process, a shutdown): its connection is never lent again. */
function sessionLost(error: unknown): boolean {
  const { code, severity } = (error ?? {}) as { code?: unknown; severity?: unknown };
  // FATAL and PANIC end the session whatever their SQLSTATE (an out-of-memory at FATAL, a standby's recovery conflict).
  if (severity === 'FATAL' || severity === 'PANIC') return true;
  return !(typeof code === 'string' && code.length === 5 && SESSION_SURVIVES_SQLSTATE.test(code));
}

/** An "unavailable" answer that means the database itself is away (its session lost, no connection to be had), not one statement's lock or timeout. */
export function databaseAway(error: unknown): boolean {
  return error instanceof DatabaseUnavailableError && sessionLost(error.cause);
}

const translate = (error: unknown) => (isUnavailable(error) && !(error instanceof DatabaseUnavailableError) ? new DatabaseUnavailableError(error, DATABASE_RETRY_AFTER_SECONDS) : error);

/** Failed queries since start, for the metrics: the database could not answer, or the statement failed. */
export interface QueryErrors {
  unavailable: number;
  statement: number;
}

/**
 * Statements sent since start, failed ones and each begin, commit and savepoint included: what
 * requests cost the database, for the metrics (and the bench's statements per operation).
 */
export interface QueryCounts {
  sent: number;
}

class PoolConnection implements DatabaseConnection {
  readonly client: pg.PoolClient;
  readonly #errors: QueryErrors;
  readonly #counts: QueryCounts;
  /** Set when the connection failed in a way that ended its session: it is destroyed at release. */
  broken: Error | undefined;

  /** What prepared statements live as long as (prepared.ts): node-postgres's connection, the database session. */
  get #session(): object {
    return (this.client as unknown as { connection?: object }).connection ?? this.client;
  }

  constructor(client: pg.PoolClient, errors: QueryErrors, counts: QueryCounts) {
    this.client = client;
    this.#errors = errors;
    this.#counts = counts;
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    this.#counts.sent += 1;
    const name = preparedName(this.#session, query.sql);
    try {
      const { command, rowCount, rows } = await this.client.query({ name, text: query.sql, values: [...query.parameters] });
      const changed = command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE';
      return { numAffectedRows: changed ? BigInt(rowCount ?? 0) : undefined, rows: rows ?? [] };
    } catch (error) {
      if (name !== undefined && isStalePrepared(error)) {
        // The connection is sound (and PGlite's only one): the statement is prepared afresh under a new name.
        prepareAfresh(this.#session);
        this.#errors.unavailable += 1;
        throw new DatabaseUnavailableError(error, DATABASE_RETRY_AFTER_SECONDS);
      }
      const translated = translate(error);
      if (translated instanceof DatabaseUnavailableError && sessionLost(error)) this.broken = translated;
      this.#errors[translated instanceof DatabaseUnavailableError ? 'unavailable' : 'statement'] += 1;
      throw translated;
    }
  }

  // biome-ignore lint/correctness/useYield: streaming is refused outright
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming queries are not used by Akamon');
  }
}

/**
 * What code inside a unit of work gets as its connection: the unit's one connection, which it never
 * releases. Once the unit has ended, stray work still holding it (a query started inside a
 * Promise.all that failed) is refused rather than run outside the transaction on a lent client.
 */
class UnitConnection implements DatabaseConnection {
  readonly #connection: PoolConnection;
  /** Work to run once the unit has ended (afterUnitOfWork), and whether only if it committed (afterUnitCommits). */
  readonly deferred: Array<{ work: () => Promise<unknown>; ifCommitted: boolean }> = [];
  open = true;
  /** How deep the transactions begun inside the unit (savepoints) are nested. */
  #savepoints = 0;
  /** For each open savepoint, how much work was deferred before it began: its rollback drops what came after. */
  readonly #deferredAtSavepoint: number[] = [];
  /**
   * The fault (database unavailable) that aborted the unit's transaction: every later statement of
   * the unit answers it unsent (the database would only say "transaction aborted", which is no
   * fault of its own and no reason for a 500), until a rollback to a savepoint makes it usable.
   */
  #aborted: DatabaseUnavailableError | undefined;

  constructor(connection: PoolConnection) {
    this.#connection = connection;
  }

  get aborted(): DatabaseUnavailableError | undefined {
    return this.#aborted;
  }

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    if (this.#aborted && this.open) return Promise.reject(this.#aborted);
    return this.#send(query);
  }

  // A savepoint's number moves once its statement has succeeded: a refused release leaves it for the rollback that follows.
  async savepoint(): Promise<void> {
    await this.executeQuery(CompiledQuery.raw(`savepoint akamon_${this.#savepoints + 1}`));
    this.#savepoints += 1;
    this.#deferredAtSavepoint.push(this.deferred.length);
  }

  async release(): Promise<void> {
    await this.executeQuery(CompiledQuery.raw(`release savepoint akamon_${this.#savepoints}`));
    this.#savepoints -= 1;
    this.#deferredAtSavepoint.pop();
  }

  /**
   * Sent also after a fault: it is what makes the transaction usable again. What was deferred
   * until the commit since the savepoint began is dropped with the savepoint's work: it told of
   * changes that will not be (afterUnitOfWork's work stays: it runs whatever the outcome).
   */
  async rollBackToSavepoint(): Promise<void> {
    await this.#send(CompiledQuery.raw(`rollback to savepoint akamon_${this.#savepoints}`));
    this.#savepoints -= 1;
    this.#aborted = undefined;
    const since = this.#deferredAtSavepoint.pop() ?? this.deferred.length;
    const kept = this.deferred.splice(since).filter((deferred) => !deferred.ifCommitted);
    this.deferred.push(...kept);
  }

  async #send<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    if (!this.open) throw new Error('the unit of work this query belonged to has ended');
    try {
      return await this.#connection.executeQuery<R>(query);
    } catch (error) {
      if (error instanceof DatabaseUnavailableError) this.#aborted = error;
      throw error;
    }
  }

  // biome-ignore lint/correctness/useYield: streaming is refused outright
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming queries are not used by Akamon');
  }
}

const units = new AsyncLocalStorage<UnitConnection>();
const currentUnit = () => {
  const unit = units.getStore();
  return unit?.open ? unit : undefined;
};

/** Whether the caller runs inside a unit of work, which holds a connection (on PGlite the only one) until it ends. */
export const inUnitOfWork = (): boolean => currentUnit() !== undefined;

/**
 * Runs `work` once the current unit of work has ended (at once when there is none), committed on
 * its own whatever became of the unit: for security actions that must stand even if the request
 * fails (revoking a replayed grant). Run inside the unit, they would wait for row locks that this
 * same unit holds (a lost UPDATE keeps its lock) or that racing units hold, and deadlock. The
 * promise resolves at once inside a unit; a deferred failure fails the unit's request (503).
 */
export async function afterUnitOfWork(work: () => Promise<unknown>): Promise<void> {
  await defer(work, false);
}

/**
 * Runs `work` once the current unit of work has committed (at once when there is none), and not
 * at all when it rolled back: for telling others of a change (a back-channel logout after a
 * suspension) that must not reach them for a change that was not kept.
 */
export async function afterUnitCommits(work: () => Promise<unknown>): Promise<void> {
  await defer(work, true);
}

/**
 * Runs `work`, a job that makes many units of work, each telling others of its change once
 * committed (afterUnitCommits: a back-channel logout to relying parties, one of which may hang
 * until its timeout). Their telling does not hold up the next unit: it runs beside the job, at most
 * TOLD_AT_ONCE at a time, and the job ends when all of it has.
 */
export async function tellingAlongside<T>(work: () => Promise<T>): Promise<T> {
  const telling = new Set<Promise<unknown>>();
  try {
    return await alongside.run(telling, work);
  } finally {
    await Promise.allSettled(telling);
  }
}

const alongside = new AsyncLocalStorage<Set<Promise<unknown>>>();
const TOLD_AT_ONCE = 50;

/** Tells of a committed unit's change: beside the job that runs it (tellingAlongside), else now. */
async function tell(work: () => Promise<unknown>): Promise<void> {
  const telling = alongside.getStore();
  if (!telling) {
    await work();
    return;
  }
  while (telling.size >= TOLD_AT_ONCE) await Promise.race(telling);
  const told: Promise<unknown> = work()
    .catch(() => undefined)
    .finally(() => telling.delete(told));
  telling.add(told);
}

async function defer(work: () => Promise<unknown>, ifCommitted: boolean): Promise<void> {
  const unit = currentUnit();
  if (unit) unit.deferred.push({ work, ifCommitted });
  else await work();
}

/**
 * kysely's Postgres driver, plus what a node needs to survive its database:
 * - every query's failure that means "unavailable" becomes a DatabaseUnavailableError (503), and a
 *   connection that failed so is destroyed rather than lent again;
 * - a unit of work (`runInUnitOfWork`) holds one connection in a transaction for everything the
 *   code inside it runs, so a whole HTTP request can commit or roll back as one; transactions begun
 *   inside it become savepoints.
 */
class ResilientDriver implements Driver {
  readonly #pool: pg.Pool;
  readonly errors: QueryErrors = { unavailable: 0, statement: 0 };
  readonly counts: QueryCounts = { sent: 0 };

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    return currentUnit() ?? this.#acquireOwn();
  }

  async #acquireOwn(): Promise<PoolConnection> {
    try {
      return new PoolConnection(await this.#pool.connect(), this.errors, this.counts);
    } catch (error) {
      this.errors.unavailable += 1;
      throw translate(error);
    }
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    if (connection instanceof UnitConnection) return connection.savepoint();
    const options = [settings.isolationLevel && `isolation level ${settings.isolationLevel}`, settings.accessMode].filter(Boolean).join(' ');
    await this.#run(connection, options ? `start transaction ${options}` : 'begin');
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    if (connection instanceof UnitConnection) return connection.release();
    await this.#run(connection, 'commit');
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    if (connection instanceof UnitConnection) return connection.rollBackToSavepoint();
    await this.#run(connection, 'rollback');
  }

  async #run(connection: DatabaseConnection, statement: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(statement));
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    if (connection instanceof UnitConnection) return;
    const own = connection as PoolConnection;
    own.client.release(own.broken);
  }

  async destroy(): Promise<void> {
    await this.#pool.end();
  }

  /**
   * Runs `work` in one transaction on one connection: it commits when `keep(result)` says so and
   * rolls back otherwise or when `work` throws. Nested calls join the outer unit. What `work`
   * deferred runs after the connection is back in the pool: afterUnitOfWork's in any case,
   * afterUnitCommits' only if the unit committed.
   */
  async runInUnitOfWork<T>(work: () => Promise<T>, keep: (result: T) => boolean = () => true): Promise<T> {
    if (currentUnit()) return work();
    const connection = await this.#acquireOwn();
    const unit = new UnitConnection(connection);
    let outcome: { result: T; committed: boolean } | { error: unknown; committed?: boolean };
    try {
      outcome = await this.#transaction(connection, unit, work, keep);
    } finally {
      connection.client.release(connection.broken);
    }
    const committed = outcome.committed === true;
    // Each deferred piece of work runs whatever became of the ones before it; the first failure is told.
    let deferredFailure: { error: unknown } | undefined;
    for (const { work: deferred, ifCommitted } of unit.deferred) {
      if (ifCommitted && committed) await units.exit(() => tell(deferred)).catch((error: unknown) => (deferredFailure ??= { error }));
      else if (!ifCommitted) await units.exit(deferred).catch((error: unknown) => (deferredFailure ??= { error }));
    }
    if ('error' in outcome) throw outcome.error;
    if (deferredFailure) throw deferredFailure.error;
    return outcome.result;
  }

  /** A connection whose rollback failed may still be inside the transaction: it is not lent again. */
  async #rollBack(connection: PoolConnection): Promise<void> {
    await this.#run(connection, 'rollback').catch((error: Error) => {
      connection.broken ??= error;
    });
  }

  async #transaction<T>(
    connection: PoolConnection,
    unit: UnitConnection,
    work: () => Promise<T>,
    keep: (result: T) => boolean,
  ): Promise<{ result: T; committed: boolean } | { error: unknown; committed?: boolean }> {
    try {
      await this.#run(connection, 'begin');
    } catch (error) {
      unit.open = false;
      return { error };
    }
    let result: T;
    try {
      result = await units.run(unit, work);
    } catch (error) {
      unit.open = false;
      await this.#rollBack(connection);
      return { error };
    }
    unit.open = false;
    // A fault the work swallowed aborted the transaction: PostgreSQL would take the commit as a
    // rollback without an error, and the unit must not report what it did not keep as kept.
    if (unit.aborted) {
      await this.#rollBack(connection);
      return { error: unit.aborted };
    }
    let kept = false;
    try {
      kept = keep(result);
      await this.#run(connection, kept ? 'commit' : 'rollback');
      return { result, committed: kept };
    } catch (error) {
      if (!kept) await this.#rollBack(connection);
      // A COMMIT whose answer was lost (the connection or the server went) may have committed:
      // what waits for a commit is done, as telling of a change that was kept matters more than
      // telling twice. A COMMIT refused with a SQLSTATE (serialization, a deferred constraint) did not.
      return { error, committed: kept && connection.broken !== undefined };
    }
  }
}

export class ResilientPostgresDialect implements Dialect {
  readonly driver: ResilientDriver;

  constructor(pool: pg.Pool) {
    this.driver = new ResilientDriver(pool);
  }

  createDriver(): Driver {
    return this.driver;
  }

  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }

  createAdapter() {
    return new PostgresAdapter();
  }

  createIntrospector(db: Kysely<unknown>) {
    return new PostgresIntrospector(db);
  }
}
