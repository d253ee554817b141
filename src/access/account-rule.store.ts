import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { writing } from '../shared/request-memo.ts';
import { clientMemoKey } from '../client/client.store.ts';

export type ListEffect = 'allow' | 'deny';

/** The explicit allow and deny lists of Common IDs per client. */
export class AccountRuleStore {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  async effect(clientId: string, commonId: string): Promise<ListEffect | null> {
    const row = await this.#db.selectFrom('client_account_rule').select('effect').where('client_id', '=', clientId).where('common_id', '=', commonId).executeTakeFirst();
    return row?.effect ?? null;
  }

  async set(clientId: string, commonId: string, effect: ListEffect): Promise<void> {
    // The client's row says whether any entry names it (ClientStore.find).
    await writing(clientMemoKey(clientId), () =>
      this.#db
        .insertInto('client_account_rule')
        .values({ client_id: clientId, common_id: commonId, effect })
        .onConflict((oc) => oc.columns(['client_id', 'common_id']).doUpdateSet({ effect }))
        .execute(),
    );
  }

  async remove(clientId: string, commonId: string): Promise<boolean> {
    const result = await writing(clientMemoKey(clientId), () => this.#db.deleteFrom('client_account_rule').where('client_id', '=', clientId).where('common_id', '=', commonId).executeTakeFirst());
    return result.numDeletedRows > 0n;
  }

  list(clientId: string): Promise<Array<{ common_id: string; effect: ListEffect }>> {
    return this.#db.selectFrom('client_account_rule').select(['common_id', 'effect']).where('client_id', '=', clientId).orderBy('common_id').execute();
  }
}
