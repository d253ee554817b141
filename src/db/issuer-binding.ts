import { sql, type Kysely } from 'kysely';
import type { DB } from './schema.ts';

/**
 * A node configured with another issuer than the one its database serves. Its message is the one
 * line the operator reads when the node refuses to start, with what to do if the move is meant.
 */
export class IssuerMismatchError extends Error {
  override name = 'IssuerMismatchError';
}

/** `recorded`: the database had no issuer yet (new, or from before migration 0006) and has this one now. */
export type IssuerBinding = { kind: 'recorded' } | { kind: 'unchanged' } | { kind: 'migrated'; from: string };

/**
 * Binds the database to one issuer. Everything a node writes under its issuer (the account home's
 * registered redirect URI, the `iss` of tokens relying parties hold) is shared by every node on
 * the database, so a node with another issuer would silently break the others: it is refused,
 * unless `migrateFrom` names the issuer the database serves now, which moves the database to
 * `issuer` (every other node must then follow). Naming the old issuer, rather than a bare yes,
 * means a setting left in place can never move the database a second time.
 *
 * Concurrent first starts are decided by the database: the first insert wins, the others compare.
 */
export async function bindIssuer(db: Kysely<DB>, issuer: string, migrateFrom?: string): Promise<IssuerBinding> {
  const inserted = await db
    .insertInto('installation')
    .values({ issuer })
    .onConflict((oc) => oc.column('singleton').doNothing())
    .returning('issuer')
    .executeTakeFirst();
  if (inserted) return { kind: 'recorded' };

  const { issuer: recorded } = await db.selectFrom('installation').select('issuer').executeTakeFirstOrThrow();
  if (recorded === issuer) return { kind: 'unchanged' };
  if (migrateFrom !== recorded) {
    throw new IssuerMismatchError(
      migrateFrom === undefined
        ? `this database serves the issuer ${recorded}, not ${issuer} (AKAMON_ISSUER); to move it to ${issuer}, start one node with AKAMON_MIGRATE_ISSUER_FROM=${recorded}`
        : `AKAMON_MIGRATE_ISSUER_FROM is ${migrateFrom}, but this database serves the issuer ${recorded}; nothing was changed`,
    );
  }
  // Conditional on the old value: of two nodes migrating at once, one moves it and the other compares again.
  const moved = await db.updateTable('installation').set({ issuer, issuer_since: sql<Date>`now()` }).where('issuer', '=', recorded).returning('issuer').executeTakeFirst();
  return moved ? { kind: 'migrated', from: recorded } : bindIssuer(db, issuer);
}
