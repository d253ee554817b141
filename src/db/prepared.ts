import { createHash } from 'node:crypto';
import { sql, type RawBuilder } from 'kysely';

/** The mark at the head of a statement's text that has the driver send it as a prepared statement. */
export const PREPARED_MARK = '/* prepared */ ';

/**
 * `statement`, parsed and planned once per database session and then run from its plan (a named
 * statement: PostgreSQL keeps a generic plan once it costs no more than the custom ones). Only for
 * a hot statement whose plan cannot depend on its values (each lookup by a key, each write an
 * upsert on one), and whose columns are named rather than `*` of a table (a migration adding a
 * column must not change what it returns): round four measured generic plans that were far worse
 * for other reads. The step's read of an interaction with its rows costs PGlite 1.2–1.5 ms of CPU
 * planned each time, 0.3–0.4 prepared.
 */
export function prepared<T>(statement: RawBuilder<T>): RawBuilder<T> {
  return sql<T>`${sql.raw(PREPARED_MARK)}${statement}`;
}

/** Marked statements are fixed texts (their values are parameters); past this many, a text is sent unprepared rather than filling every session. */
const MAX_PREPARED = 32;
/**
 * Past this many stale statements since start (isStalePrepared), nothing more is
 * prepared: a pooler that loses named statements (PgBouncer in transaction mode without
 * max_prepared_statements) would otherwise answer 503 again and again.
 */
const MAX_STALE = 16;
const names = new Map<string, string>();
/**
 * Keyed by node-postgres's connection, which lives as long as the database session: PGlite's one
 * session outlives the pool's clients, which end after an idle spell and share its connection.
 */
const serials = new WeakMap<object, number>();
let lastSerial = 0;
let stale = 0;

/** The name `text` is prepared under in `session` (node-postgres's connection), or undefined for a statement sent unprepared. */
export function preparedName(session: object, text: string): string | undefined {
  if (!text.startsWith(PREPARED_MARK) || stale >= MAX_STALE) return undefined;
  let name = names.get(text);
  if (!name) {
    if (names.size >= MAX_PREPARED) return undefined;
    name = createHash('sha256').update(text).digest('base64url').slice(0, 22);
    names.set(text, name);
  }
  let serial = serials.get(session);
  if (serial === undefined) {
    serial = ++lastSerial;
    serials.set(session, serial);
  }
  return `akamon_${serial}_${name}`;
}

/**
 * What a prepared statement gets when its session lost it or its plan no longer fits (a migration
 * changed a table it reads, run by another node): 0A000, cached plan must not change result type;
 * 26000, no such prepared statement; 42P05, one of that name exists already. The request is
 * answered as busy (503, Retry-After) and the session prepares its statements afresh (prepareAfresh).
 */
export function isStalePrepared(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return code === '26000' || code === '42P05' || (code === '0A000' && typeof message === 'string' && message.includes('cached plan'));
}

/** The session's marked statements get new names, so that each is prepared again at its next use (the old ones are left to the session). */
export function prepareAfresh(session: object): void {
  stale += 1;
  serials.set(session, ++lastSerial);
}
