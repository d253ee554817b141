import { sql, type OperationNodeSource, type RawBuilder } from 'kysely';

/**
 * Writes that go together (a throttle's outcome and the sign-in log's row, say) as one statement:
 * one round trip, and all of them or none. Each is a data-modifying statement without a WITH of
 * its own (PostgreSQL allows those only at the top), and no two may change the same row.
 */
export function inOneStatement(writes: ReadonlyArray<OperationNodeSource>): RawBuilder<unknown> {
  return sql`with ${sql.join(writes.map((write, i) => sql`${sql.raw(`write_${i}`)} as (${write})`))} select 1`;
}
