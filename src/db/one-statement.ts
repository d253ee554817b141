import { AsyncLocalStorage } from 'node:async_hooks';
import { sql, type OperationNodeSource, type RawBuilder } from 'kysely';

/**
 * Writes that go together (a throttle's outcome and the sign-in log's row, say) as one statement:
 * one round trip, and all of them or none. Each is a data-modifying statement without a WITH of
 * its own (PostgreSQL allows those only at the top), and no two may change the same row.
 */
export function inOneStatement(writes: ReadonlyArray<OperationNodeSource>): RawBuilder<unknown> {
  return sql`with ${sql.join(writes.map((write, i) => sql`${sql.raw(`write_${i}`)} as (${write})`))} select 1`;
}

const held = new AsyncLocalStorage<OperationNodeSource[]>();

/**
 * Runs `work` with the writes offered to holdWrite collected in `into`, not made: the caller makes
 * them in its own closing statement (inOneStatement), before it answers. For work that does not read
 * what it wrote: a sign-in step's turn, whose result goes out with the turn's end (one-at-a-time.ts).
 */
export function holdingWrites<T>(into: OperationNodeSource[], work: () => Promise<T>): Promise<T> {
  return held.run(into, work);
}

/** Holds `write` for the work around it (holdingWrites); false, having held nothing, outside such work. */
export function holdWrite(write: OperationNodeSource): boolean {
  const into = held.getStore();
  into?.push(write);
  return into !== undefined;
}
