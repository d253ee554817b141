import fs from 'node:fs/promises';
import path from 'node:path';
import { Kysely, sql } from 'kysely';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { createPgConfig } from '@electric-sql/pglite/node-postgres';
import type { DB } from './schema.ts';
import { ResilientPostgresDialect, type QueryErrors } from './driver.ts';
import { DatabaseUnavailableError } from '../shared/errors.ts';
import {
  DATABASE_RETRY_AFTER_SECONDS,
  DATABASE_ACQUIRE_TIMEOUT_MS,
  DATABASE_IDLE_IN_TRANSACTION_MS,
  DATABASE_LOCK_TIMEOUT_MS,
  DATABASE_READ_TIMEOUT_MS,
  DATABASE_STATEMENT_TIMEOUT_MS,
} from '../config/defaults.ts';

/** The connection pool's state and the failed queries, read by the metrics at each scrape. */
export interface DatabaseStats {
  total: number;
  idle: number;
  waiting: number;
  max: number;
  queryErrors: Readonly<QueryErrors>;
  /** Statements sent since start (driver.ts QueryCounts). */
  queries: number;
}

export interface Database {
  readonly db: Kysely<DB>;
  readonly kind: 'postgres' | 'pglite';
  /**
   * Runs `work` (an HTTP request, say) in one transaction: every query inside it, however deep,
   * uses the same connection; it commits when `keep(result)` holds (without `keep`: whenever
   * `work` returns), and rolls back otherwise or when `work` throws.
   */
  unitOfWork<T>(work: () => Promise<T>, keep?: (result: T) => boolean): Promise<T>;
  /** Resolves when the database answers `select 1` within `ms`; rejects with DatabaseUnavailableError otherwise. */
  ping(ms: number): Promise<void>;
  /** Cheap: counters kept by the pool and the driver, no query. */
  stats(): DatabaseStats;
  /** Only for embedded databases: a dump of the whole data directory (tests cache a migrated one). */
  dump?(): Promise<Blob>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** A postgres:// URL; when absent Akamon embeds PGlite. */
  url?: string;
  /** PGlite data directory; undefined keeps the embedded database in memory. */
  dataDir?: string;
  /** Restores an embedded database from a dump made by `dump()`. */
  loadDataDir?: Blob;
  /** Postgres schema to use (tests give each database handle its own). */
  schema?: string;
  poolMax?: number;
  /** Told of connection errors that no query is waiting for (an idle or lent client's backend went away). */
  onError?: (error: Error) => void;
}

// int8 (bigserial ids, counts) stays a string, as node-postgres returns it: it is only ever displayed.

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.url) return openPostgres(options.url, options);
  return openPglite(options);
}

async function openPostgres(url: string, options: DatabaseOptions): Promise<Database> {
  const serverSettings = [
    options.schema && `-c search_path=${options.schema}`,
    `-c lock_timeout=${DATABASE_LOCK_TIMEOUT_MS}`,
    `-c idle_in_transaction_session_timeout=${DATABASE_IDLE_IN_TRANSACTION_MS}`,
  ]
    .filter(Boolean)
    .join(' ');
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolMax ?? 10,
    connectionTimeoutMillis: DATABASE_ACQUIRE_TIMEOUT_MS,
    idleTimeoutMillis: 30000,
    keepAlive: true,
    statement_timeout: DATABASE_STATEMENT_TIMEOUT_MS,
    query_timeout: DATABASE_READ_TIMEOUT_MS,
    options: serverSettings,
  });
  return handle(pool, 'postgres', options, async (db) => db.destroy());
}

/**
 * A client whose backend goes away emits 'error'. The pool listens only while the client is idle,
 * so a lent one needs a listener of its own: unheard, the event would end the process. The query
 * that was running fails by itself (and the driver turns that into a 503).
 */
function listenForErrors(pool: pg.Pool, onError: (error: Error) => void) {
  pool.on('error', onError);
  pool.on('connect', (client) => client.on('error', onError));
}

function handle(pool: pg.Pool, kind: Database['kind'], options: DatabaseOptions, close: (db: Kysely<DB>) => Promise<void>, extra: Partial<Database> = {}): Database {
  listenForErrors(pool, (error) => options.onError?.(error));
  const dialect = new ResilientPostgresDialect(pool);
  const db = new Kysely<DB>({ dialect });
  return {
    db,
    kind,
    unitOfWork: (work, keep) => dialect.driver.runInUnitOfWork(work, keep),
    async ping(ms) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new DatabaseUnavailableError(new Error(`no answer within ${ms} ms`), DATABASE_RETRY_AFTER_SECONDS)), ms);
      });
      try {
        await Promise.race([sql`select 1`.execute(db), late]);
      } finally {
        clearTimeout(timer);
      }
    },
    stats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: pool.options.max, queryErrors: dialect.driver.errors, queries: dialect.driver.counts.sent }),
    close: () => close(db),
    ...extra,
  };
}

/**
 * Postgres settings of the embedded database, on top of PGlite's own. PGlite's shared_buffers (128 MB
 * by default) is allocated inside its WebAssembly memory and zeroed at start, so all of it is
 * resident from the first second, however small the database. 16 MB holds what the hot paths read;
 * other pages come from the operating system's file cache through the data directory, as with a
 * small shared_buffers on a Postgres server. Measured under the benchmark: about 110 MiB less
 * resident memory, no measurable cost per request. (Only startParams carries them: they are not
 * written into the data directory.)
 */
const PGLITE_SETTINGS = ['shared_buffers=16MB'];

async function openPglite(options: DatabaseOptions): Promise<Database> {
  if (options.dataDir) await fs.mkdir(path.dirname(path.resolve(options.dataDir)), { recursive: true });
  const pglite = await PGlite.create({
    dataDir: options.dataDir,
    loadDataDir: options.loadDataDir,
    startParams: [...PGlite.defaultStartParams, ...PGLITE_SETTINGS.flatMap((setting) => ['-c', setting])],
  });
  // One connection: PGlite is a single session, so the pool serialises transactions. Kept however
  // long it idles: a new client would prepare its statements again in the same session (prepared.ts).
  const pool = new pg.Pool({ ...(createPgConfig(pglite) as pg.PoolConfig), idleTimeoutMillis: 0 });
  const close = async (db: Kysely<DB>) => {
    await db.destroy();
    await pglite.close();
  };
  return handle(pool, 'pglite', options, close, { dump: () => pglite.dumpDataDir('none') as Promise<Blob> });
}
