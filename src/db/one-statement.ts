import { AsyncLocalStorage } from 'node:async_hooks';
import { sql, type Kysely, type OperationNodeSource, type RawBuilder } from 'kysely';
import type { DB } from './schema.ts';

/**
 * Writes that go together (a throttle's outcome and the sign-in log's row, say) as one statement:
 * one round trip, and all of them or none. Each is a data-modifying statement without a WITH of
 * its own (PostgreSQL allows those only at the top), and no two may change the same row.
 */
export function inOneStatement(writes: ReadonlyArray<OperationNodeSource>): RawBuilder<unknown> {
  if (writes.length === 0) throw new Error('inOneStatement needs at least one write');
  return sql`with ${sql.join(writes.map((write, i) => sql`${sql.raw(`write_${i}`)} as (${write})`))} select 1`;
}

/**
 * Writes held back while a piece of work runs, for the caller to make in its own closing statement
 * (inOneStatement) before it answers: a sign-in step's result goes out with the end of the step's
 * turn (one-at-a-time.ts). For work that does not read back what it wrote. A row saved twice is
 * held once, as last saved (one statement may change a row only once); once the work has ended,
 * nothing more is held (a task it left running writes at once).
 */
export class HeldWrites {
  readonly #writes = new Map<string, readonly OperationNodeSource[]>();
  #open = false;

  async run<T>(work: () => Promise<T>): Promise<T> {
    this.#open = true;
    try {
      return await holding.run(this, work);
    } finally {
      this.#open = false;
    }
  }

  hold(row: string, writes: readonly OperationNodeSource[]): boolean {
    if (this.#open) this.#writes.set(row, writes);
    return this.#open;
  }

  get writes(): OperationNodeSource[] {
    return [...this.#writes.values()].flat();
  }
}

const holding = new AsyncLocalStorage<HeldWrites>();

/**
 * Holds the writes of `row` (one or several statements that go together) for the work around it
 * (HeldWrites.run); false, having held nothing, outside such work.
 */
export function holdWrite(row: string, ...writes: OperationNodeSource[]): boolean {
  return holding.getStore()?.hold(row, writes) ?? false;
}

/**
 * Runs `work` holding the writes it holds (holdWrite) and then, when `keep(result)` says it
 * succeeded, makes them in one statement before the caller answers: all of them or none. A work
 * that threw or failed writes nothing it held (after a fault its transaction may be unusable).
 */
export async function withHeldWrites<T>(db: Kysely<DB>, work: () => Promise<T>, keep: (result: T) => boolean): Promise<T> {
  const held = new HeldWrites();
  const result = await held.run(work);
  const { writes } = held;
  if (writes.length > 0 && keep(result)) await inOneStatement(writes).execute(db);
  return result;
}
