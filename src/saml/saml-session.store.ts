import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import type { NameId } from './attributes.ts';

export interface SamlSession {
  /** The SessionIndex given to the SP. */
  id: string;
  clientId: string;
  accountId: string;
  /** The uid of the sign-in session (oidc-provider's Session) the assertion was given in. */
  sessionUid: string;
  nameId: NameId;
}

/**
 * The assertions given to SAML service providers, by sign-in session: ending a session (sign-out,
 * sign-out everywhere, suspension, revocation) finds here which SPs to tell.
 */
export class SamlSessionStore {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  async add(session: SamlSession, ttlSeconds: number): Promise<void> {
    await this.#db
      .insertInto('saml_session')
      .values({
        id: session.id,
        client_id: session.clientId,
        account_id: session.accountId,
        session_uid: session.sessionUid,
        name_id: JSON.stringify(session.nameId),
        expires_at: sql<Date>`now() + make_interval(secs => ${ttlSeconds})` as never,
      })
      .execute();
  }

  /** Ends the live SAML sessions of a sign-in session (or of every session of an account) and answers them; `db`: a transaction to do it in. */
  async end(where: { sessionUid: string } | { accountId: string }, db: Kysely<DB> = this.#db): Promise<SamlSession[]> {
    const rows = await db
      .updateTable('saml_session')
      .set({ ended_at: sql<Date>`now()` as never })
      .where('sessionUid' in where ? 'session_uid' : 'account_id', '=', 'sessionUid' in where ? where.sessionUid : where.accountId)
      .where('ended_at', 'is', null)
      .where('expires_at', '>', sql<Date>`now()`)
      .returning(['id', 'client_id', 'account_id', 'session_uid', 'name_id'])
      .execute();
    return rows.map(toSession);
  }

  /**
   * The live SAML sessions of this SP that an SP's LogoutRequest names: by its SessionIndexes (a
   * handful at most, readLogoutRequest bounds them), or by the person's NameID when it gives none
   * (core 3.7.3.2: all of that person's sessions at the SP). One query either way.
   */
  async named(clientId: string, by: { ids: readonly string[] } | { nameId: string }): Promise<SamlSession[]> {
    const live = this.#db
      .selectFrom('saml_session')
      .select(['id', 'client_id', 'account_id', 'session_uid', 'name_id'])
      .where('client_id', '=', clientId)
      .where('ended_at', 'is', null)
      .where('expires_at', '>', sql<Date>`now()`);
    if ('nameId' in by) return (await live.where(sql<string>`name_id->>'value'`, '=', by.nameId).execute()).map(toSession);
    const ids = by.ids.filter((id) => id.length <= 100);
    return ids.length ? (await live.where('id', 'in', ids).execute()).map(toSession) : [];
  }

  async deleteExpired(limit: number): Promise<number> {
    const result = await sql`delete from saml_session where id in (select id from saml_session where expires_at < now() limit ${limit})`.execute(this.#db);
    return Number(result.numAffectedRows ?? 0);
  }
}

function toSession(r: { id: string; client_id: string; account_id: string; session_uid: string; name_id: unknown }): SamlSession {
  return { id: r.id, clientId: r.client_id, accountId: r.account_id, sessionUid: r.session_uid, nameId: r.name_id as NameId };
}
