import type { Kysely, Selectable } from 'kysely';
import type { DB, IdentityLinkTable } from '../db/schema.ts';
import { isUuid } from '../shared/uuid.ts';

export type IdentityLinkRow = Selectable<IdentityLinkTable>;

/** Links between accounts and the upstream provider's pairwise identifiers. */
export class IdentityLinkStore {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  forAccount(accountId: string): Promise<IdentityLinkRow | undefined> {
    if (!isUuid(accountId)) return Promise.resolve(undefined);
    return this.#db.selectFrom('identity_link').selectAll().where('account_id', '=', accountId).executeTakeFirst();
  }

  forSubject(issuer: string, subject: string): Promise<IdentityLinkRow | undefined> {
    return this.#db.selectFrom('identity_link').selectAll().where('issuer', '=', issuer).where('subject', '=', subject).executeTakeFirst();
  }

  /**
   * Links (or links again, replacing the account's earlier link) in one statement. False when the
   * identifier already belongs to another account: the unique key decides, so two racing links
   * cannot both win.
   */
  async save(link: IdentityLinkRow): Promise<boolean> {
    // In a transaction of its own: inside a larger one (a change the account home makes while its
    // session is held) that is a savepoint, and the refused insert does not abort the rest.
    const row = await this.#db
      .transaction()
      .execute((trx) =>
        trx
          .insertInto('identity_link')
          .values(link)
          .onConflict((oc) => oc.column('account_id').doUpdateSet({ issuer: link.issuer, subject: link.subject, name: link.name, linked_at: link.linked_at }))
          .returning('account_id')
          .executeTakeFirst(),
      )
      .catch((error: { code?: string }) => {
        if (error.code === '23505') return undefined; // identity_link_subject_key: another account has it
        throw error;
      });
    return row !== undefined;
  }

  async remove(accountId: string): Promise<boolean> {
    if (!isUuid(accountId)) return false;
    const result = await this.#db.deleteFrom('identity_link').where('account_id', '=', accountId).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
