import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { writingProviderRows } from '../db/provider-rows.ts';

/** Housekeeping on the provider's table that the provider itself does not do. */
export class OidcPayloadStore {
  readonly #db: Kysely<DB>;
  #beforeRevoke: (accountId: string) => Promise<unknown> = async () => undefined;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  /** What must happen while the sessions still exist (back-channel logout); set once the provider is built. */
  beforeRevoke(hook: (accountId: string) => Promise<unknown>): void {
    this.#beforeRevoke = hook;
  }

  /** Ends every session, grant and token of an account at once (all nodes read the same rows). */
  async revokeAccount(accountId: string): Promise<number> {
    await this.#beforeRevoke(accountId);
    const result = await writingProviderRows(() =>
      this.#db
        .deleteFrom('oidc_payload')
        .where((eb) =>
          eb.or([eb('account_id', '=', accountId), eb('grant_id', 'in', eb.selectFrom('oidc_payload as g').select('g.id').where('g.model', '=', 'Grant').where('g.account_id', '=', accountId))]),
        )
        .executeTakeFirst(),
    );
    return Number(result.numDeletedRows);
  }

  /** Deletes at most `limit` expired rows; the sweeper calls it until it returns less than the limit. */
  async deleteExpired(limit: number): Promise<number> {
    const result = await sql<{ count: string }>`
      with doomed as (
        select ctid from oidc_payload where expires_at < now() limit ${limit}
      )
      delete from oidc_payload where ctid in (select ctid from doomed)`.execute(this.#db);
    return Number(result.numAffectedRows ?? 0);
  }
}
