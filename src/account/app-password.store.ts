import { isUuid } from '../shared/uuid.ts';
import { sql, type Kysely, type Selectable } from 'kysely';
import type { AppPasswordTable, DB } from '../db/schema.ts';
import { lockAccountRow } from '../db/row-locks.ts';

export type AppPasswordRow = Omit<Selectable<AppPasswordTable>, 'digest'>;

export class AppPasswordStore {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  /**
   * Inserts unless the account already has `max`. One statement alone is not enough: concurrent
   * ones each count before the others' rows exist. Under the account's row lock they count in turn.
   */
  async insert(accountId: string, name: string, digest: string, max: number): Promise<AppPasswordRow | undefined> {
    return this.#db.transaction().execute(async (trx) => {
      await lockAccountRow(trx, accountId);
      const result = await sql<AppPasswordRow>`
        insert into app_password (account_id, name, digest)
        select ${accountId}, ${name}, ${digest}
        where (select count(*) from app_password where account_id = ${accountId}) < ${max}
        returning id, account_id, name, created_at, last_used_at`.execute(trx);
      return result.rows[0];
    });
  }

  list(accountId: string): Promise<AppPasswordRow[]> {
    return this.#db.selectFrom('app_password').select(['id', 'account_id', 'name', 'created_at', 'last_used_at']).where('account_id', '=', accountId).orderBy('created_at').execute();
  }

  async delete(accountId: string, id: string): Promise<boolean> {
    if (!isUuid(id)) return false;
    const result = await this.#db.deleteFrom('app_password').where('account_id', '=', accountId).where('id', '=', id).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  /** Ends every app password of the account; answers how many there were. */
  async deleteAll(accountId: string): Promise<number> {
    const result = await this.#db.deleteFrom('app_password').where('account_id', '=', accountId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Finds the account's app password with this digest (an index lookup, no comparison in JS). */
  async use(accountId: string, digest: string): Promise<boolean> {
    const row = await this.#db
      .updateTable('app_password')
      .set({ last_used_at: sql<Date>`now()` as never })
      .where('account_id', '=', accountId)
      .where('digest', '=', digest)
      .returning('id')
      .executeTakeFirst();
    return row !== undefined;
  }
}
