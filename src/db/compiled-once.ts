import { type CompiledQuery, type Kysely, type QueryResult, type RawBuilder, sql } from 'kysely';
import type { DB } from './schema.ts';

/** Where a run's value goes in a statement compiled once (compiledOnce). */
class Slot {
  readonly name: string;

  constructor(name: string) {
    this.name = name;
  }
}

/** A statement's value: given, or bound at each run of a statement compiled once. */
export type Value<T> = T | RawBuilder<T>;

/** A value of the run, as a parameter of the statement being built. */
export type Bind<V> = <K extends keyof V & string>(name: K) => RawBuilder<V[K]>;

/**
 * A statement whose text is the same at every run, built and compiled by kysely once (at its first
 * run); each run binds its values to that text. Building and compiling a sign-in step's larger
 * statements (its turn with the interaction, session and client; the throttle's claim) cost 10 to
 * 40 µs of CPU and their garbage at every request. Values that are part of the text (a key name,
 * a pattern) stay as built; `bind(name)` marks what each run supplies. `db` builds the statement
 * (its query builders) and runs it.
 */
export function compiledOnce<V extends Record<string, unknown>, R>(build: (bind: Bind<V>, db: Kysely<DB>) => RawBuilder<R>): (db: Kysely<DB>, values: V) => Promise<QueryResult<R>> {
  let compiled: CompiledQuery<R> | undefined;
  return async (db, values) => {
    compiled ??= build((name) => sql.val(new Slot(name)) as RawBuilder<never>, db).compile(db);
    const parameters = compiled.parameters.map((parameter) => {
      if (!(parameter instanceof Slot)) return parameter;
      // A name bound in the text but missing from the run's values is a mistake, not a NULL.
      if (!Object.hasOwn(values, parameter.name)) throw new Error(`no value for ${parameter.name}`);
      return values[parameter.name];
    });
    return db.executeQuery({ ...compiled, parameters });
  };
}
