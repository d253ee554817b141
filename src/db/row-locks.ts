import type { Transaction } from 'kysely';
import type { DB } from './schema.ts';

/**
 * Holds the account's row lock until the transaction ends. Writes that count or replace what an
 * account already has (a cap on its app passwords, one live code per purpose) take it first, so
 * concurrent ones queue: under READ COMMITTED each statement after the lock sees every row the
 * previous holder committed, and the check and the write act as one.
 */
export async function lockAccountRow(trx: Transaction<DB>, accountId: string): Promise<void> {
  await trx.selectFrom('account').select('id').where('id', '=', accountId).forUpdate().execute();
}
