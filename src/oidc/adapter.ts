import { sql, type Kysely } from 'kysely';
import Provider, { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { DB } from '../db/schema.ts';
import { afterUnitOfWork } from '../db/driver.ts';
import { holdWrite } from '../db/one-statement.ts';
import { memoised, remember, writing, type BringAlong } from '../shared/request-memo.ts';
import {
  accountUuid,
  begunAfterSessionsEnded,
  live,
  PROVIDER_ROWS_MEMO_PREFIX as MEMO_PREFIX,
  providerRowMemoKey,
  storedPayload,
  writingProviderRows,
  type ProviderRowColumn,
  type StoredProviderRow,
} from '../db/provider-rows.ts';
import type { AccountRow } from '../account/account.store.ts';
import { DEVICE_CODE_KEPT_EXPIRED_SECONDS, TOKEN_RETRY_GRACE_SECONDS } from '../config/defaults.ts';
import { TokenRetries } from './token-retry.ts';
import { heldWrites, holdConsumption, takeHeld, writeHeld, type ProviderRow } from './rotation.ts';

/** Reads relying-party registrations for the provider (the `Client` model). */
export type ClientMetadataSource = (clientId: string) => Promise<AdapterPayload | undefined>;

const TOKEN_MODELS = ['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest'];

/**
 * Tokens whose use makes oidc-provider read their grant (and session) next, one query after the
 * other. Reading them by id brings both along in the same round trip (see #findToken).
 */
const PREFETCHING_MODELS = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken']);

/**
 * Rows kept readable past the expiry the provider gave them (it checks its own `exp`): a device
 * still polling an expired code hears expired_token rather than invalid_grant, and a person typing
 * it reads that it expired rather than that it is wrong (RFC 8628 section 3.5).
 */
const KEPT_PAST_EXPIRY: Record<string, number> = { DeviceCode: DEVICE_CODE_KEPT_EXPIRED_SECONDS };

/**
 * For a write to rows of the given models only: it forgets those models' reads in this request and
 * keeps the others (a refresh grant's new tokens leave the session read with the old one valid).
 * Writes that reach rows of any model (revoking a grant) forget them all (writingProviderRows).
 */
const writingRowsOf = <T>(models: string[], write: () => Promise<T>): Promise<T> => {
  const [model, ...more] = models;
  if (!model) return write();
  return writing(`${MEMO_PREFIX}${model}:`, () => writingRowsOf(more, write));
};

/** The models whose saves wait for the end of the work that holds writes (one-statement.ts), when one does. */
// DeviceCode: the device flow's resume saves the approved code with the session and grant (provider-gate.ts).
const HELD_MODELS = ['Interaction', 'Session', 'Grant', 'AuthorizationCode', 'DeviceCode'];

/** The models whose rows a rotation writes (rotation.ts). */
const ROTATION_MODELS = ['RefreshToken', 'AccessToken'];

/**
 * One round trip for a token row, the row of its grant, the row of the session it is bound to and
 * its account's row: what oidc-provider and the token gate (find-account.ts) read next, one query
 * after the other. Every branch has the account's columns (NULL but in the account's branch), so
 * the account comes typed as a plain read of its table would bring it.
 */
export function tokenWithItsRows(model: string, id: string) {
  return sql<{ role: string; payload: unknown; consumed_at: Date | null } & Partial<AccountRow>>`
    with token as (
      select payload, consumed_at, account_id from oidc_payload where model = ${model} and id = ${id} and ${live('oidc_payload')}
    )
    select 'token' as role, payload, consumed_at, (null::account).* from token
    union all
    select 'Grant', g.payload, g.consumed_at, (null::account).* from token join oidc_payload g
      on g.model = 'Grant' and g.id = token.payload->>'grantId' and ${live('g')} and ${begunAfterSessionsEnded('g', 'Grant')}
    union all
    select 'Session', s.payload, s.consumed_at, (null::account).* from token join oidc_payload s
      on s.model = 'Session' and s.uid = token.payload->>'sessionUid' and ${live('s')} and ${begunAfterSessionsEnded('s', 'Session')}
    union all
    select 'Account', null, null, a.* from token join account a on a.id = ${accountUuid(sql.ref('token.account_id'))}`;
}

/**
 * The key under which a token read leaves its account's row for the token gate of the same request
 * (find-account.ts). No write forgets it: no token request changes the account before its gate.
 */
export const tokenAccountMemoKey = (accountId: string) => `token-account:${accountId}`;

const toPayload = (row: StoredProviderRow) => storedPayload(row) as AdapterPayload;

/**
 * A used client assertion (the provider's ReplayDetection: its issuer and jti, kept until it expires)
 * is recorded by one insert that fails while a live record exists, so of requests carrying the same
 * assertion at once only one gets through (the provider's find-then-save would let both). It is
 * refused as the provider refuses a replay; an expired record is taken over.
 */
async function rememberOnce(db: Kysely<DB>, id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
  const expiresAt = sql<Date>`now() + make_interval(secs => ${Math.max(1, expiresIn)})`;
  const taken = await writingRowsOf(['ReplayDetection'], () =>
    db
      .insertInto('oidc_payload')
      .values({ model: 'ReplayDetection', id, payload: JSON.stringify(payload), expires_at: expiresAt } as never)
      .onConflict((oc) =>
        oc
          .columns(['model', 'id'])
          .doUpdateSet({ payload: JSON.stringify(payload), expires_at: expiresAt } as never)
          .where(sql<boolean>`oidc_payload.expires_at <= now()`),
      )
      .returning('id')
      .executeTakeFirst(),
  );
  if (!taken) throw new errors.InvalidClientAuth('client assertion tokens must only be used once');
}

/**
 * Persists every oidc-provider model in one Postgres table so that any node can continue
 * what another began. Clients come from the `client` table through `clients`. A code or refresh
 * token presented again within `retryGraceSeconds` may be a retry of a lost answer (token-retry.ts).
 */
export function postgresAdapter(db: Kysely<DB>, clients: ClientMetadataSource, retryGraceSeconds = TOKEN_RETRY_GRACE_SECONDS) {
  const retries = new TokenRetries(db, retryGraceSeconds);
  /**
   * Every token issued under a grant, in one statement whichever model asked: concurrent
   * revocations of one grant then lock its rows in the same order and never deadlock.
   */
  const deleteTokensOf = (grantId: string) => db.deleteFrom('oidc_payload').where('model', 'in', TOKEN_MODELS).where('grant_id', '=', grantId).execute();
  /**
   * The grant and every token issued under it, as the provider does for a reused code, with the
   * provider's 'grant.revoked' event (the log's "grant revoked" line) as its own revocation sends.
   */
  const revokeGrant = async (grantId: string) => {
    await writingProviderRows(() =>
      afterUnitOfWork(async () => {
        await deleteTokensOf(grantId);
        await db.deleteFrom('oidc_payload').where('model', '=', 'Grant').where('id', '=', grantId).execute();
      }),
    );
    const ctx = Provider.ctx;
    ctx?.oidc?.provider.emit('grant.revoked', ctx, grantId);
  };
  /** A code or token found consumed when this request went to consume it: a replay, which revokes its grant. */
  const refuseConsumed = async (model: string, id: string): Promise<never> => {
    const row = await db.selectFrom('oidc_payload').select('grant_id').where('model', '=', model).where('id', '=', id).executeTakeFirst();
    if (row?.grant_id) await revokeGrant(row.grant_id);
    throw new errors.InvalidGrant('grant already consumed');
  };

  return class PostgresAdapter implements Adapter {
    readonly model: string;

    constructor(model: string) {
      this.model = model;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.model === 'Client') throw new Error('clients are managed with the akamon CLI');
      const held = heldWrites();
      const row: ProviderRow = {
        model: this.model,
        id,
        payload: JSON.stringify(payload),
        grant_id: payload.grantId ?? null,
        user_code: payload.userCode ?? null,
        uid: payload.uid ?? null,
        account_id: payload.accountId ?? null,
        seconds: expiresIn ? expiresIn + (KEPT_PAST_EXPIRY[this.model] ?? 0) : null,
      };
      // A rotation's new refresh token waits for its access token: both go out with the consumption.
      if (held && ROTATION_MODELS.includes(this.model)) {
        held.rows.set(`${this.model}:${id}`, row);
        if (this.model === 'AccessToken') await this.#settle();
        return;
      }
      await this.#settle();
      if (this.model === 'ReplayDetection') return rememberOnce(db, id, payload, expiresIn);
      const expiresAt = row.seconds === null ? null : sql<Date>`now() + make_interval(secs => ${row.seconds})`;
      const saved = { payload: row.payload, grant_id: row.grant_id, user_code: row.user_code, uid: row.uid, account_id: row.account_id, expires_at: expiresAt };
      const write = db
        .insertInto('oidc_payload')
        // `replaces` is set once, when the token is issued; a later save of the row keeps it.
        .values({ model: this.model, id, ...saved, replaces: retries.replaced(this.model, payload) } as never)
        .onConflict((oc) => oc.columns(['model', 'id']).doUpdateSet(saved as never));
      // A sign-in step's result goes out with the end of the step's turn (one-at-a-time.ts), and the
      // session, grant and code of a resume go out together as it answers (provider-gate.ts); till
      // then a read in this request gets the row as saved, not as stored.
      let waits = false;
      await writingRowsOf([this.model], async () => {
        waits = HELD_MODELS.includes(this.model) && holdWrite(`${this.model}:${id}`, write);
        if (!waits) await write.execute();
      });
      if (waits) remember(providerRowMemoKey(this.model, 'id', id), structuredClone(payload));
    }

    /**
     * Writes what a rotation holds back (rotation.ts): the consumption of the presented refresh token
     * and its successors, in one statement. Lost to a concurrent use, it is a replay, as in consume().
     */
    async #settle(): Promise<void> {
      const held = takeHeld();
      if (!held) return;
      const consumed = await writingRowsOf(ROTATION_MODELS, () => writeHeld(db, held));
      if (consumed) {
        retries.consumed('RefreshToken', held.consumed, consumed.grantId);
        return;
      }
      await refuseConsumed('RefreshToken', held.consumed);
    }

    /**
     * Moves a live row's expiry in place, in the payload (which oidc-provider checks) and in
     * expires_at (which every read checks): for a session used through its refresh tokens
     * (session-lifetime.ts). A row that is gone or expired stays so; nothing is inserted.
     */
    async extend(id: string, exp: number, expiresIn: number): Promise<void> {
      await this.#settle();
      await writingRowsOf([this.model], () =>
        db
          .updateTable('oidc_payload')
          .set({
            payload: sql`jsonb_set(payload, '{exp}', to_jsonb(${exp}::bigint))`,
            expires_at: sql<Date>`now() + make_interval(secs => ${expiresIn})`,
          } as never)
          .where('model', '=', this.model)
          .where('id', '=', id)
          .where(live('oidc_payload'))
          .execute(),
      );
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model === 'Client') return clients(id);
      await this.#settle();
      return retries.shown(this.model, id, await this.#findBy('id', id));
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      await this.#settle();
      return this.#findBy('uid', uid);
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      await this.#settle();
      return this.#findBy('user_code', userCode);
    }

    /**
     * Within a request, a row is read from the database once (request-memo); every caller gets a
     * copy of its own, since the provider's models keep and change what they are given.
     */
    async #findBy(column: ProviderRowColumn, value: string): Promise<AdapterPayload | undefined> {
      const load =
        column === 'id' && PREFETCHING_MODELS.has(this.model)
          ? (bringAlong: BringAlong) => this.#findToken(value, bringAlong)
          : async () => {
              const row = await db
                .selectFrom('oidc_payload')
                .select(['payload', 'consumed_at'])
                .where('model', '=', this.model)
                .where(column, '=', value)
                .where(live('oidc_payload'))
                // A session or grant of an account whose sessions were all ended after it began is gone.
                .$if(this.model === 'Session' || this.model === 'Grant', (query) => query.where(begunAfterSessionsEnded('oidc_payload', this.model as 'Session' | 'Grant')))
                .executeTakeFirst();
              return row && toPayload(row);
            };
      const payload = await memoised(providerRowMemoKey(this.model, column, value), load);
      return payload && structuredClone(payload);
    }

    /** The token, and in the same query the grant it belongs to and the session it is bound to. */
    async #findToken(id: string, bringAlong: BringAlong): Promise<AdapterPayload | undefined> {
      const { rows } = await tokenWithItsRows(this.model, id).execute(db);
      const byRole = new Map(rows.map((row) => [row.role, row]));
      const token = byRole.get('token');
      if (!token) return undefined;
      const payload = toPayload(token);
      // Absent rows are remembered too: the provider's own read would find nothing either.
      const payloadOf = (role: string) => {
        const row = byRole.get(role);
        return row && toPayload(row);
      };
      if (payload.grantId) bringAlong(providerRowMemoKey('Grant', 'id', payload.grantId), payloadOf('Grant'));
      if (payload.sessionUid) bringAlong(providerRowMemoKey('Session', 'uid', String(payload.sessionUid)), payloadOf('Session'));
      const account = byRole.get('Account');
      if (account) {
        const { role: _role, payload: _payload, consumed_at: _consumed, ...row } = account;
        bringAlong(tokenAccountMemoKey(row.id!), row);
      }
      return payload;
    }

    /**
     * One atomic UPDATE: of concurrent redemptions exactly one changes the row. The others lost a
     * race with a replay, so they get invalid_grant and the grant is revoked, as for a reused code.
     * A token request presenting a code or token it found consumed already may be a retry of a
     * lost answer instead: token-retry.ts tells which. The time is the statement's, not the
     * transaction's: a retry must have arrived after it. A refresh grant's rotation makes the same
     * UPDATE in the statement that writes the new tokens (rotation.ts).
     */
    async consume(id: string): Promise<void> {
      await this.#settle();
      if (retries.presentedAgain(this.model, id)) {
        // A retry sets aside and deletes the tokens of the lost answer: rows of other models.
        const refusal = await writingProviderRows(() => retries.claim(this.model, id));
        if (!refusal) return;
        if (refusal.grantId) await revokeGrant(refusal.grantId);
        throw new errors.InvalidGrant(refusal.detail);
      }
      // A refresh grant's rotation: consumed in one statement with the tokens that replace it (rotation.ts).
      if (holdConsumption(this.model, id)) return;
      const updated = await writingRowsOf([this.model], () =>
        db
          .updateTable('oidc_payload')
          .set({ consumed_at: sql<Date>`clock_timestamp()` })
          .where('model', '=', this.model)
          .where('id', '=', id)
          .where('consumed_at', 'is', null)
          .returning('grant_id')
          .executeTakeFirst(),
      );
      if (updated) {
        retries.consumed(this.model, id, updated.grant_id);
        return;
      }
      await refuseConsumed(this.model, id);
    }

    /**
     * The provider destroys an Interaction when it resumes the authorization request it finished:
     * of parallel resumes only the one that deleted the row goes on, so one sign-in gives one code.
     */
    async destroy(id: string): Promise<void> {
      await this.#settle();
      const deleted = await writingRowsOf([this.model], () => db.deleteFrom('oidc_payload').where('model', '=', this.model).where('id', '=', id).returning('id').executeTakeFirst());
      if (!deleted && this.model === 'Interaction') throw new errors.SessionNotFound('interaction session not found');
    }

    /**
     * The provider revokes a grant's tokens model by model; each call deletes them all (the same
     * end state) so that concurrent revocations take their locks in one order. It runs after the
     * token request's unit of work (see afterUnitOfWork): a revocation stands even if the request fails.
     * An Interaction or Session also records a grant id and must survive.
     */
    async revokeByGrantId(grantId: string): Promise<void> {
      await this.#settle();
      await writingProviderRows(() => afterUnitOfWork(() => deleteTokensOf(grantId)));
    }
  };
}
