import { createHash } from 'node:crypto';
import { sql, type RawBuilder } from 'kysely';

/** The mark at the head of a statement's text that has the driver send it as a prepared statement. */
export const PREPARED_MARK = '/* prepared */ ';

/**
 * `statement`, parsed and planned once per connection and then run from its plan (a named
 * statement: PostgreSQL keeps a generic plan once it costs no more than the custom ones). Only for
 * a hot statement whose every lookup is by a unique key, so that one plan serves every value:
 * round four measured generic plans that were far worse for other reads. The step's read of an
 * interaction with its rows costs PGlite 1.2–1.5 ms of CPU planned each time, 0.3–0.4 prepared.
 */
export function prepared<T>(statement: RawBuilder<T>): RawBuilder<T> {
  return sql<T>`${sql.raw(PREPARED_MARK)}${statement}`;
}

/** Marked statements are fixed texts (their values are parameters); past this many, a text is sent unprepared rather than filling every session. */
const MAX_PREPARED = 32;
const names = new Map<string, string>();
/** Prepared statements live in the database session; PGlite's one session outlives a client, hence the client's serial. */
const serials = new WeakMap<object, number>();
let lastSerial = 0;

/** The name a client prepares `text` under, or undefined for a statement that is not marked. */
export function preparedName(client: object, text: string): string | undefined {
  if (!text.startsWith(PREPARED_MARK)) return undefined;
  let name = names.get(text);
  if (!name) {
    if (names.size >= MAX_PREPARED) return undefined;
    name = createHash('sha256').update(text).digest('base64url').slice(0, 22);
    names.set(text, name);
  }
  let serial = serials.get(client);
  if (serial === undefined) {
    serial = ++lastSerial;
    serials.set(client, serial);
  }
  return `akamon_${serial}_${name}`;
}

/**
 * What a prepared statement gets when its session lost it or its plan no longer fits (a migration
 * changed a table it reads, run by another node): 0A000, cached plan must not change result type;
 * 26000, no such prepared statement; 42P05, one of that name exists already. The request is
 * answered as busy (503, Retry-After) and the client prepares its statements afresh (prepareAfresh).
 */
export const STALE_PREPARED_SQLSTATE = new Set(['0A000', '26000', '42P05']);

/** The client's marked statements get new names, so that each is prepared again at its next use (the old ones are left to the session). */
export function prepareAfresh(client: object): void {
  serials.set(client, ++lastSerial);
}
