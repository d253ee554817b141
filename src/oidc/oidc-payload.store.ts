import { type ExpressionBuilder, sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { begunAfterSessionsEnded, type ConnectedClient, live, writingProviderRows } from '../db/provider-rows.ts';
import { isUuid } from '../shared/uuid.ts';

/** The part of a Grant's payload that records consent (oidc-provider's Grant model). */
export interface GrantConsent {
  openid?: { scope?: string; claims?: string[] };
  rejected?: { openid?: { scope?: string; claims?: string[] }; resources?: Record<string, string> };
  resources?: Record<string, string>;
}

/**
 * What goes with the end of an account's sessions: `alongside`, in the same transaction (what must
 * end with them or not at all: the SAML sessions); `after`, once that transaction is done, with the
 * Session payloads as they were deleted, or only the sign-ins taken out of them (back-channel logout, which reports its failures and never
 * throws; inside a unit of work that transaction is a savepoint, and the logout waits for the
 * unit's commit by itself: afterUnitCommits).
 */
export interface RevokeHooks {
  alongside: (trx: Kysely<DB>, accountId: string) => Promise<unknown>;
  after: (accountId: string, sessions: unknown[]) => Promise<unknown>;
}

/** Deletes of a client's grants: one, one after a sign-in in flight saved its grant, and one to find none (revokeClient). */
const REVOKE_PASSES = 3;

/** Housekeeping on the provider's table that the provider itself does not do. */
export class OidcPayloadStore {
  readonly #db: Kysely<DB>;
  #onRevoke: RevokeHooks = { alongside: async () => undefined, after: async () => undefined };

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  /** What goes with the end of an account's sessions; set once the provider is built. */
  onRevoke(hooks: RevokeHooks): void {
    this.#onRevoke = hooks;
  }

  /**
   * Locks the account's sessions until the transaction ends: what a change that may end them takes
   * before the account's row (SCIM), as every session-ending change and the account home do.
   */
  async lockSessionsOf(accountId: string, db: Kysely<DB> = this.#db): Promise<void> {
    // In one order, so that two changes locking the same sessions queue rather than deadlock.
    await db.selectFrom('oidc_payload').select('id').where('model', '=', 'Session').where('account_id', '=', accountId).orderBy('id').forUpdate().execute();
  }

  /**
   * Ends every session, grant and token of an account at once (all nodes read the same rows), and
   * with them the account home on every device, whose sign-in is one of those sessions. The time is
   * recorded too, so that a session a request in flight writes back is dead all the same
   * (begunAfterSessionsEnded). The delete comes first: it waits for an account-home change that
   * holds its session (authorizationLive with `hold`), which then lands before the sign-out, never after.
   * The relying parties are told of exactly the sessions the delete ended, once they are gone: one
   * that checks back finds them ended, and a sign-in made meanwhile is not ended unannounced.
   */
  async revokeAccount(accountId: string): Promise<number> {
    const deleted = await writingProviderRows(() =>
      this.#db.transaction().execute(async (trx) => {
        const rows = await trx
          .deleteFrom('oidc_payload')
          .where((eb) =>
            eb.or([eb('account_id', '=', accountId), eb('grant_id', 'in', eb.selectFrom('oidc_payload as g').select('g.id').where('g.model', '=', 'Grant').where('g.account_id', '=', accountId))]),
          )
          // Only a Session's payload is wanted back (for the relying parties), not every token's.
          .returning(sql<unknown>`case when model = 'Session' then payload end`.as('session'))
          .execute();
        await this.#onRevoke.alongside(trx, accountId);
        // The provider's account ids are any string; only an account's uuid has a row to mark.
        if (isUuid(accountId)) {
          await trx
            .updateTable('account')
            .set({ sessions_ended_at: sql<Date>`now()` as never })
            .where('id', '=', accountId)
            .execute();
        }
        return rows;
      }),
    );
    await this.#onRevoke.after(
      accountId,
      deleted.flatMap((row) => (row.session === null ? [] : [row.session])),
    );
    return deleted.length;
  }

  /**
   * Whether the sign-in `sid` of `clientId` (the ID token's sid claim) still belongs to a live
   * session of the account: not ended by a logout, a sign-out everywhere or its lifetime. With
   * `hold`, inside a transaction, the session's row stays locked (FOR SHARE) until it ends, so that
   * nothing can end the session meanwhile: a sign-out waits for the change being made.
   */
  async authorizationLive(accountId: string, clientId: string, sid: string, options: { hold?: boolean } = {}): Promise<boolean> {
    const query = this.#db
      .selectFrom('oidc_payload as s')
      .select('s.id')
      .where('s.model', '=', 'Session')
      .where('s.account_id', '=', accountId)
      .where(sql<boolean>`s.payload->'authorizations'->${clientId}->>'sid' = ${sid}`)
      .where(live('s'))
      .where(begunAfterSessionsEnded('s', 'Session'));
    return Boolean(await (options.hold ? query.forShare() : query).executeTakeFirst());
  }

  /**
   * What the account's grants to the client still in force record (not expired, not begun before a
   * sign-out everywhere, suspension or password reset; anything that ends grants deletes the rows):
   * the consent a new sign-in's grant starts from (grants.ts). Held (FOR SHARE) until the sign-in's
   * unit ends: a Remove access meanwhile waits for it, and then finds the new grant too (revokeClient).
   */
  async liveGrants(accountId: string, clientId: string): Promise<GrantConsent[]> {
    const rows = await this.#db
      .selectFrom('oidc_payload')
      .select('payload')
      .where('model', '=', 'Grant')
      .where('account_id', '=', accountId)
      .where(sql<boolean>`payload->>'clientId' = ${clientId}`)
      .where(live('oidc_payload'))
      .where(begunAfterSessionsEnded('oidc_payload', 'Grant'))
      .forShare()
      .execute();
    return rows.map((row) => row.payload as GrantConsent);
  }

  /** The systems the account's grants still in force are to, oldest first (liveGrants' rule of "in force"). */
  async connectedClients(accountId: string): Promise<ConnectedClient[]> {
    const rows = await this.#db
      .selectFrom('oidc_payload as g')
      .select([
        sql<string>`g.payload->>'clientId'`.as('client_id'),
        sql<string | null>`g.payload->'openid'->>'scope'`.as('scope'),
        sql<string>`g.payload->>'iat'`.as('iat'),
        sql<boolean>`exists (select 1 from oidc_payload r where r.grant_id = g.id and r.model = 'RefreshToken' and r.consumed_at is null and ${live('r')})`.as('offline'),
      ])
      .where('g.model', '=', 'Grant')
      .where('g.account_id', '=', accountId)
      .where(live('g'))
      .where(begunAfterSessionsEnded('g', 'Grant'))
      .orderBy(sql`(g.payload->>'iat')::bigint`)
      .execute();
    const byClient = new Map<string, ConnectedClient>();
    for (const row of rows) {
      const client = byClient.get(row.client_id) ?? { clientId: row.client_id, scopes: [], since: new Date(Number(row.iat) * 1000), offline: false };
      for (const scope of (row.scope ?? '').split(' ')) if (scope && !client.scopes.includes(scope)) client.scopes.push(scope);
      client.offline ||= row.offline;
      byClient.set(row.client_id, client);
    }
    return [...byClient.values()];
  }

  /**
   * Ends every grant of the account to the client, and every code and token issued under them, and
   * takes the client's sign-in out of the account's sessions (as a logout from that client alone
   * does): the system's next sign-in starts from nothing (a third-party one asks for consent again),
   * and one with back-channel logout is told of each sign-in that ended. The account's sessions are
   * locked first, as every change that ends them does (lockSessionsOf). Answers how many grants and
   * sign-ins ended.
   */
  async revokeClient(accountId: string, clientId: string): Promise<{ grants: number; signIns: number }> {
    const grants = (eb: ExpressionBuilder<DB, 'oidc_payload'>) =>
      eb.selectFrom('oidc_payload as g').select('g.id').where('g.model', '=', 'Grant').where('g.account_id', '=', accountId).where(sql<boolean>`g.payload->>'clientId' = ${clientId}`);
    const { ended, sids } = await writingProviderRows(() =>
      this.#db.transaction().execute(async (trx) => {
        await this.lockSessionsOf(accountId, trx);
        // A sign-in in flight holds the grants it started from (liveGrants): the first delete waits
        // for it, and a later one, in a snapshot of its own, takes the grant it then saved.
        let ended = 0;
        for (let pass = 0; pass < REVOKE_PASSES; pass += 1) {
          const deleted = await trx
            .deleteFrom('oidc_payload')
            .where((eb) => eb.or([eb('grant_id', 'in', grants(eb)), eb.and([eb('model', '=', 'Grant'), eb('id', 'in', grants(eb))])]))
            .returning('model')
            .execute();
          const count = deleted.filter((row) => row.model === 'Grant').length;
          if (count === 0) break;
          ended += count;
        }
        const signIns = await sql<{ sid: string | null }>`
          with signed as (
            select id, payload->'authorizations'->${clientId}->>'sid' as sid from oidc_payload
            where model = 'Session' and account_id = ${accountId} and payload->'authorizations' ? ${clientId}
            for update
          )
          update oidc_payload s set payload = s.payload #- array['authorizations', ${clientId}]::text[]
          from signed where s.model = 'Session' and s.id = signed.id
          returning signed.sid`.execute(trx);
        return { ended, sids: signIns.rows.flatMap((row) => (row.sid ? [row.sid] : [])) };
      }),
    );
    if (sids.length)
      await this.#onRevoke.after(
        accountId,
        sids.map((sid) => ({ authorizations: { [clientId]: { sid } } })),
      );
    return { grants: ended, signIns: sids.length };
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
