import { sql, type Kysely } from 'kysely';
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { DB } from '../db/schema.ts';

/** Reads relying-party registrations for the provider (the `Client` model). */
export type ClientMetadataSource = (clientId: string) => Promise<AdapterPayload | undefined>;

const TOKEN_MODELS = ['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest'];

/**
 * Persists every oidc-provider model in one Postgres table so that any node can continue
 * what another began. Clients come from the `client` table through `clients`.
 */
export function postgresAdapter(db: Kysely<DB>, clients: ClientMetadataSource) {
  /** The grant and every token issued under it, as the provider does for a reused code. */
  const revokeGrant = (grantId: string) => db.deleteFrom('oidc_payload')
    .where((eb) => eb.or([
      eb.and([eb('model', 'in', TOKEN_MODELS), eb('grant_id', '=', grantId)]),
      eb.and([eb('model', '=', 'Grant'), eb('id', '=', grantId)]),
    ]))
    .execute();

  return class PostgresAdapter implements Adapter {
    readonly model: string;

    constructor(model: string) {
      this.model = model;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.model === 'Client') throw new Error('clients are managed with the akamon CLI');
      const expiresAt = expiresIn ? sql<Date>`now() + make_interval(secs => ${expiresIn})` : null;
      const row = {
        model: this.model,
        id,
        payload: JSON.stringify(payload),
        grant_id: payload.grantId ?? null,
        user_code: payload.userCode ?? null,
        uid: payload.uid ?? null,
        account_id: payload.accountId ?? null,
        expires_at: expiresAt,
      };
      await db.insertInto('oidc_payload')
        .values(row as never)
        .onConflict((oc) => oc.columns(['model', 'id']).doUpdateSet({
          payload: row.payload,
          grant_id: row.grant_id,
          user_code: row.user_code,
          uid: row.uid,
          account_id: row.account_id,
          expires_at: expiresAt,
        } as never))
        .execute();
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model === 'Client') return clients(id);
      return this.#findBy('id', id);
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.#findBy('uid', uid);
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.#findBy('user_code', userCode);
    }

    async #findBy(column: 'id' | 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
      const row = await db.selectFrom('oidc_payload')
        .select(['payload', 'consumed_at'])
        .where('model', '=', this.model)
        .where(column, '=', value)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]))
        .executeTakeFirst();
      if (!row) return undefined;
      const payload = row.payload as AdapterPayload;
      if (row.consumed_at) payload.consumed = Math.floor(new Date(row.consumed_at).getTime() / 1000);
      return payload;
    }

    /**
     * One atomic UPDATE: of concurrent redemptions exactly one changes the row. The others lost a
     * race with a replay, so they get invalid_grant and the grant is revoked, as for a reused code.
     */
    async consume(id: string): Promise<void> {
      const updated = await db.updateTable('oidc_payload')
        .set({ consumed_at: sql<Date>`now()` })
        .where('model', '=', this.model)
        .where('id', '=', id)
        .where('consumed_at', 'is', null)
        .returning('id')
        .executeTakeFirst();
      if (updated) return;
      const row = await db.selectFrom('oidc_payload').select('grant_id')
        .where('model', '=', this.model).where('id', '=', id).executeTakeFirst();
      if (row?.grant_id) await revokeGrant(row.grant_id);
      throw new errors.InvalidGrant('grant already consumed');
    }

    async destroy(id: string): Promise<void> {
      await db.deleteFrom('oidc_payload').where('model', '=', this.model).where('id', '=', id).execute();
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      // Only this model's rows: an Interaction or Session also records a grant id and must survive.
      await db.deleteFrom('oidc_payload').where('model', '=', this.model).where('grant_id', '=', grantId).execute();
    }
  };
}
