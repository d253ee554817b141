import { type Kysely, sql } from 'kysely';
import type { Logger } from 'pino';
import { type CheckedRow, checkImportRows, IMPORT_COLUMNS, type ImportKind, type RevocationInput } from '../account/account-import.ts';
import type { AccountInput, Problem } from '../account/account-input.ts';
import { problemOf } from '../account/account-input.ts';
import type { AccountRow } from '../account/account.store.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { revocationTime } from '../account/revocation.ts';
import { IMPORT_MAX_ROWS, IMPORT_SECRET_TTL_SECONDS, IMPORT_STALL_SECONDS } from '../config/defaults.ts';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { DB } from '../db/schema.ts';
import type { Database } from '../db/database.ts';
import { afterUnitCommits } from '../db/driver.ts';
import type { InitialPassword } from '../account/account.service.ts';
import type { Clock } from '../shared/clock.ts';
import { parseCsvTable } from '../shared/csv-table.ts';
import { DomainError, RetryLaterError } from '../shared/errors.ts';
import { authorize, type Principal } from './permissions.ts';

/** What an import does with a row: HelpDesk's methods, which check the permission and the scope and write the audit. */
export interface ImportActions {
  /** The initial password of a create that would be taken, made before the row's unit of work. */
  initialPassword(principal: Principal, input: AccountInput): Promise<InitialPassword>;
  create(principal: Principal, input: AccountInput, initial: InitialPassword): Promise<{ account: AccountRow; initialPassword: string }>;
  revoke(principal: Principal, commonId: string, options: { on?: Date; reason: string | null }): Promise<AccountRow>;
}

export type JobState = 'running' | 'finished' | 'interrupted';

export interface ImportJob {
  id: string;
  kind: ImportKind;
  fileName: string;
  total: number;
  processed: number;
  failed: number;
  state: JobState;
  createdAt: Date;
  finishedAt: Date | null;
  /** Initial passwords of created accounts wait for their one download. */
  secretsWaiting: boolean;
}

export interface ImportRowResult {
  line: number;
  commonId: string | null;
  outcome: 'created' | 'scheduled' | 'failed';
  errors: Problem[];
}

/** An initial password handed out: with what its letter needs. */
export interface IssuedSecret {
  line: number;
  commonId: string;
  name: string;
  password: string;
  issuedAt: Date;
}

type RowResult = { outcome: 'created'; errors: Problem[]; name: string; secret: string } | { outcome: 'scheduled' | 'failed'; errors: Problem[] };

const failedRow = (errors: Problem[]): RowResult => ({ outcome: 'failed', errors });

/** `work`'s answer, or a refusal (a DomainError that is not "try later") as the row's error. */
async function orRefusal<T>(work: () => Promise<T>): Promise<T | RowResult> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof DomainError && !(error instanceof RetryLaterError)) return failedRow([problemOf(error)]);
    throw error;
  }
}

/** How often a row is tried again while the server is busy (each time after the wait the refusal asked for). */
const RETRY_LIMIT = 10;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * CSV imports started in the console: the file is checked at once (every problem of every row),
 * then the rows are acted on one by one in the background for the operator who uploaded it, through
 * HelpDesk, so a row outside an office's scope is refused as that office would be refused by hand.
 * Each finished row is written with the job's counts and heartbeat, so any node shows the progress
 * and a job whose node died shows as interrupted with what was done. Uploading the file again
 * redoes the rest: creating is idempotent per Common ID (an existing account is a row error).
 *
 * Initial passwords are kept encrypted with the secret box for one download, and wiped then or
 * after IMPORT_SECRET_TTL_SECONDS, whichever comes first.
 */
export class ImportJobs {
  readonly #db: Kysely<DB>;
  readonly #actions: ImportActions;
  readonly #box: SecretBox;
  readonly #audit: AuditLog;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #timeZone: string;
  readonly #principalNow: (principal: Principal) => Promise<Principal | undefined>;
  readonly #unitOfWork: Database['unitOfWork'];
  readonly #running = new Set<Promise<void>>();
  #stopping = false;

  constructor(deps: {
    db: Kysely<DB>;
    actions: ImportActions;
    box: SecretBox;
    audit: AuditLog;
    clock: Clock;
    logger: Logger;
    timeZone: string;
    /** The uploader's role and scope as they stand now (OperatorStore#currentPrincipal). */
    principalNow: (principal: Principal) => Promise<Principal | undefined>;
    /** One transaction for a row's action and its record (Database#unitOfWork). */
    unitOfWork: Database['unitOfWork'];
  }) {
    this.#db = deps.db;
    this.#actions = deps.actions;
    this.#box = deps.box;
    this.#audit = deps.audit;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#timeZone = deps.timeZone;
    this.#principalNow = deps.principalNow;
    this.#unitOfWork = deps.unitOfWork;
  }

  /**
   * Checks the file and starts the job; answers its id at once. A file that cannot be read as the
   * kind's CSV is refused (csv_* codes) before a job exists.
   */
  async start(principal: Principal, kind: ImportKind, fileName: string, bytes: Uint8Array, maxBytes: number): Promise<string> {
    authorize(principal, kind === 'accounts' ? 'account.create' : 'account.status');
    const parsed = parseCsvTable(bytes, IMPORT_COLUMNS[kind], { name: 'the file', maxBytes, maxRows: IMPORT_MAX_ROWS });
    if (!parsed.length) throw new DomainError('csv_no_rows', 'the file has a header but no rows');
    const rows = checkImportRows(kind, parsed);
    // The job and its record are one unit: a job nobody can trace to its operator never runs.
    const job = await this.#unitOfWork(async () => {
      const created = await this.#db
        .insertInto('import_job')
        .values({ kind, actor: principal.actor, file_name: fileName.slice(0, 200), total: rows.length, created_at: this.#clock.now(), heartbeat_at: this.#clock.now() })
        .returning('id')
        .executeTakeFirstOrThrow();
      // Each row's create or revocation has its own record (HelpDesk's); this one ties them to the file.
      await this.#audit.record({ actor: principal.actor, action: 'import.started', accountId: null, details: { job: created.id, kind, file: fileName.slice(0, 200), rows: rows.length } });
      // Started once committed (also a unit this one is inside of): the rows' own units must find
      // the job, and a job rolled back never runs.
      await afterUnitCommits(async () => this.#launch(created.id, principal, kind, rows));
      return created;
    });
    return job.id;
  }

  /** Runs the job in the background; settled() waits for it. */
  #launch(id: string, principal: Principal, kind: ImportKind, rows: Array<CheckedRow<AccountInput | RevocationInput>>): void {
    const run = this.#run(id, principal, kind, rows)
      .catch((error: unknown) => this.#logger.error({ err: error, job: id }, 'import stopped; it shows as interrupted'))
      .finally(() => this.#running.delete(run));
    this.#running.add(run);
  }

  /**
   * A graceful shutdown: each running job finishes the row it is on (so an account created has its
   * row and password kept) and stops there; it then shows as interrupted, and uploading the file
   * again does the rest.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.settled();
  }

  /** Resolves when the jobs this node runs have ended (a graceful shutdown, a test). */
  async settled(): Promise<void> {
    while (this.#running.size) await Promise.all([...this.#running]);
  }

  async #run(id: string, principal: Principal, kind: ImportKind, rows: Array<CheckedRow<AccountInput | RevocationInput>>): Promise<void> {
    for (const row of rows) {
      if (this.#stopping) return;
      await this.#patiently(id, () => this.#row(id, principal, kind, row));
    }
    await this.#patiently(id, () => this.#db.updateTable('import_job').set({ finished_at: this.#clock.now(), heartbeat_at: this.#clock.now() }).where('id', '=', id).execute());
  }

  /**
   * One row: its action and its record (with the initial password it made) in one unit of work, so
   * that no fault leaves an account created without the row that keeps its password; the hashing
   * comes before it. A refusal is the row's error.
   */
  async #row(id: string, principal: Principal, kind: ImportKind, row: CheckedRow<AccountInput | RevocationInput>): Promise<void> {
    const value = row.value;
    const act = value ? await orRefusal(() => this.#prepare(principal, kind, value)) : failedRow(row.problems);
    await this.#unitOfWork(async () => {
      // Done already: a try whose commit went through though its answer was lost.
      if (await this.#db.selectFrom('import_job_row').select('line').where('job_id', '=', id).where('line', '=', row.line).executeTakeFirst()) return;
      // A savepoint of its own: a refused action leaves nothing of it behind the row that says so.
      const result = typeof act === 'function' ? await orRefusal(() => this.#db.transaction().execute(() => act())) : act;
      const failed = result.outcome === 'failed';
      await this.#db
        .insertInto('import_job_row')
        .values({
          job_id: id,
          line: row.line,
          common_id: row.commonId?.slice(0, 40) ?? null,
          name: 'name' in result ? result.name : null,
          outcome: result.outcome,
          errors: JSON.stringify(result.errors),
          secret: 'secret' in result ? result.secret : null,
        })
        .execute();
      await this.#db
        .updateTable('import_job')
        .set((eb) => ({ processed: eb('processed', '+', 1), failed: eb('failed', '+', failed ? 1 : 0), heartbeat_at: this.#clock.now() }))
        .where('id', '=', id)
        .execute();
    });
  }

  /**
   * What a row will do, with the uploader's role and scope as they are now (a role withdrawn or
   * narrowed while the job runs applies from the next row, as it would to the next thing done by
   * hand), its initial password already made.
   */
  async #prepare(principal: Principal, kind: ImportKind, value: AccountInput | RevocationInput): Promise<() => Promise<RowResult>> {
    const now = await this.#principalNow(principal);
    if (!now) throw new DomainError('forbidden', 'the operator who started this import no longer holds a console role');
    if (kind === 'accounts') {
      const input = value as AccountInput;
      const initial = await this.#actions.initialPassword(now, input);
      return async () => {
        const { account, initialPassword } = await this.#actions.create(now, input, initial);
        return { outcome: 'created', errors: [], name: account.name, secret: this.#box.encrypt(initialPassword) };
      };
    }
    const { commonId, on, reason } = value as RevocationInput;
    const when = revocationTime(on, this.#timeZone, 'revoke_on');
    return async () => {
      await this.#actions.revoke(now, commonId, { on: when, reason });
      return { outcome: 'scheduled', errors: [] };
    };
  }

  /** `work` again while the server is busy or the database away (after the wait the refusal asks for), RETRY_LIMIT times at most. */
  async #patiently<T>(id: string, work: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (error) {
        if (!(error instanceof RetryLaterError) || attempt >= RETRY_LIMIT) throw error;
        // Still alive while waiting (a job whose heartbeat stops shows as interrupted), if the database can say so.
        await this.#db
          .updateTable('import_job')
          .set({ heartbeat_at: this.#clock.now() })
          .where('id', '=', id)
          .execute()
          .catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, error.retryAfterSeconds * 1000));
      }
    }
  }

  /** A job of this operator (jobs are their own: a report names accounts another office may not see). */
  async job(principal: Principal, id: string): Promise<ImportJob | undefined> {
    if (!UUID.test(id)) return undefined;
    const row = await this.#db.selectFrom('import_job').selectAll().where('id', '=', id).where('actor', '=', principal.actor).executeTakeFirst();
    return row ? this.#view(row) : undefined;
  }

  /** The operator's recent jobs, newest first. */
  async recent(principal: Principal, limit = 10): Promise<ImportJob[]> {
    const rows = await this.#db.selectFrom('import_job').selectAll().where('actor', '=', principal.actor).orderBy('created_at', 'desc').limit(limit).execute();
    return rows.map((row) => this.#view(row));
  }

  #view(row: {
    id: string;
    kind: string;
    file_name: string;
    total: number;
    processed: number;
    failed: number;
    created_at: Date;
    heartbeat_at: Date;
    finished_at: Date | null;
    secrets_gone_at: Date | null;
  }): ImportJob {
    const stalled = this.#clock.now().getTime() - new Date(row.heartbeat_at).getTime() > IMPORT_STALL_SECONDS * 1000;
    const state: JobState = row.finished_at ? 'finished' : stalled ? 'interrupted' : 'running';
    const fresh = this.#clock.now().getTime() - new Date(row.created_at).getTime() < IMPORT_SECRET_TTL_SECONDS * 1000;
    return {
      id: row.id,
      kind: row.kind as ImportKind,
      fileName: row.file_name,
      total: row.total,
      processed: row.processed,
      failed: row.failed,
      state,
      createdAt: new Date(row.created_at),
      finishedAt: row.finished_at ? new Date(row.finished_at) : null,
      secretsWaiting: row.kind === 'accounts' && state !== 'running' && row.processed > row.failed && !row.secrets_gone_at && fresh,
    };
  }

  /** Every row done so far, in file order. */
  async rows(job: ImportJob): Promise<ImportRowResult[]> {
    const rows = await this.#db.selectFrom('import_job_row').select(['line', 'common_id', 'outcome', 'errors']).where('job_id', '=', job.id).orderBy('line').execute();
    return rows.map((row) => ({ line: row.line, commonId: row.common_id, outcome: row.outcome as ImportRowResult['outcome'], errors: row.errors }));
  }

  /**
   * The initial passwords of a job that is no longer running, once: the job is marked and the
   * ciphertexts removed in one transaction, so a second download (or a racing one) gets nothing.
   */
  async takeSecrets(principal: Principal, job: ImportJob): Promise<IssuedSecret[] | undefined> {
    if (!job.secretsWaiting) return undefined;
    const taken = await this.#db.transaction().execute(async (trx) => {
      const claimed = await trx
        .updateTable('import_job')
        .set({ secrets_gone_at: this.#clock.now() })
        .where('id', '=', job.id)
        .where('actor', '=', principal.actor)
        .where('secrets_gone_at', 'is', null)
        .returning('id')
        .executeTakeFirst();
      if (!claimed) return undefined;
      // Only the transaction that claimed the job gets here: reading, then wiping, cannot race.
      const rows = await trx.selectFrom('import_job_row').select(['line', 'common_id', 'name', 'secret', 'done_at']).where('job_id', '=', job.id).where('secret', 'is not', null).execute();
      await trx.updateTable('import_job_row').set({ secret: null }).where('job_id', '=', job.id).where('secret', 'is not', null).execute();
      return rows
        .sort((a, b) => a.line - b.line)
        .map((row) => ({ line: row.line, commonId: row.common_id!, name: row.name ?? '', password: this.#box.decrypt(row.secret!), issuedAt: new Date(row.done_at) }));
    });
    // Outside the transaction: on an embedded database it holds the only connection.
    if (taken) await this.#audit.record({ actor: principal.actor, action: 'import.passwords_downloaded', accountId: null, details: { job: job.id, accounts: taken.length } });
    return taken;
  }

  /** Sweeper task: wipes the passwords nobody downloaded within IMPORT_SECRET_TTL_SECONDS. */
  async wipeExpiredSecrets(batch: number): Promise<number> {
    const before = new Date(this.#clock.now().getTime() - IMPORT_SECRET_TTL_SECONDS * 1000);
    const due = await this.#db
      .selectFrom('import_job_row')
      .innerJoin('import_job', 'import_job.id', 'import_job_row.job_id')
      .select(['import_job_row.job_id', 'import_job_row.line'])
      .where('import_job_row.secret', 'is not', null)
      .where('import_job.created_at', '<', before)
      .limit(batch)
      .execute();
    if (due.length) {
      await this.#db
        .updateTable('import_job_row')
        .set({ secret: null })
        .where(sql<boolean>`(job_id, line) in (${sql.join(due.map((row) => sql`(${row.job_id}::uuid, ${row.line}::integer)`))})`)
        .execute();
    }
    await this.#db.updateTable('import_job').set({ secrets_gone_at: this.#clock.now() }).where('created_at', '<', before).where('secrets_gone_at', 'is', null).execute();
    return due.length;
  }
}
