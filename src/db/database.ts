import fs from 'node:fs/promises';
import path from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { createPgConfig } from '@electric-sql/pglite/node-postgres';
import type { DB } from './schema.ts';

export interface Database {
  readonly db: Kysely<DB>;
  readonly kind: 'postgres' | 'pglite';
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
  onError?: (error: Error) => void;
}

// int8 (bigserial ids, counts) stays a string, as node-postgres returns it: it is only ever displayed.

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.url) return openPostgres(options.url, options);
  return openPglite(options);
}

async function openPostgres(url: string, options: DatabaseOptions): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolMax ?? 10,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30000,
    keepAlive: true,
    // A stuck query must not hold a request forever.
    statement_timeout: 10000,
    options: options.schema ? `-c search_path=${options.schema}` : undefined,
  });
  // An idle client whose backend went away emits 'error'; unhandled, it would crash the process.
  pool.on('error', (error) => options.onError?.(error));
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  return { db, kind: 'postgres', close: () => db.destroy() };
}

async function openPglite(options: DatabaseOptions): Promise<Database> {
  if (options.dataDir) await fs.mkdir(path.dirname(path.resolve(options.dataDir)), { recursive: true });
  const pglite = await PGlite.create({
    dataDir: options.dataDir,
    loadDataDir: options.loadDataDir,
  });
  // One connection: PGlite is a single session, so the pool serialises transactions.
  const pool = new pg.Pool(createPgConfig(pglite) as pg.PoolConfig);
  pool.on('error', (error) => options.onError?.(error));
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    kind: 'pglite',
    dump: () => pglite.dumpDataDir('none') as Promise<Blob>,
    async close() {
      await db.destroy();
      await pglite.close();
    },
  };
}
