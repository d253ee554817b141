import { isUuid } from '../shared/uuid.ts';
import { systemClock, type Clock } from '../shared/clock.ts';
import { sql, type Expression, type Kysely, type Selectable, type SqlBool } from 'kysely';
import type { AccountStatus, AccountTable, Affiliation, DB } from '../db/schema.ts';
import type { ProfileValues } from './account-fields.ts';

export type AccountRow = Selectable<AccountTable>;

/**
 * Every column of `account`, by name: what a prepared read of the whole row selects (a prepared
 * statement names its columns, db/prepared.ts). A column added to AccountTable and not here fails
 * to compile where such a read is typed as an AccountRow (mfa.store.ts).
 */
export const ACCOUNT_COLUMNS = [
  'id',
  'common_id',
  'name',
  'email',
  'email_verified',
  'family_name',
  'given_name',
  'family_name_ja',
  'given_name_ja',
  'family_name_kana',
  'given_name_kana',
  'department',
  'external_id',
  'entitlements',
  'affiliation',
  'status',
  'password_hash',
  'password_set_at',
  'must_change_password',
  'mfa_required',
  'recovery_email',
  'recovery_email_verified_at',
  'mfa_postpone_count',
  'mfa_postponed_at',
  'revoke_at',
  'revoke_reason',
  'revoked_at',
  'sessions_ended_at',
  'created_at',
  'updated_at',
] as const satisfies ReadonlyArray<keyof AccountTable>;

export interface NewAccount {
  commonId: string;
  name: string;
  email: string | null;
  affiliation: Affiliation;
  /** The feeding system's identifier (SCIM externalId), when it gave one. */
  externalId?: string | null;
  passwordHash: string;
  /** Fields left out take their defaults (no name parts, no department, a verified email). */
  profile?: Partial<ProfileValues>;
}

export class AccountStore {
  readonly #db: Kysely<DB>;
  readonly #clock: Clock;

  /** The clock sets password times, so that expiry follows the same (injectable) time as its checks. */
  constructor(db: Kysely<DB>, clock: Clock = systemClock) {
    this.#db = db;
    this.#clock = clock;
  }

  async insert(account: NewAccount): Promise<AccountRow | undefined> {
    return this.#db
      .insertInto('account')
      .values({
        common_id: account.commonId,
        name: account.name,
        email: account.email,
        affiliation: account.affiliation,
        external_id: account.externalId ?? null,
        ...account.profile,
        status: 'active',
        password_hash: account.passwordHash,
        password_set_at: this.#clock.now(),
        must_change_password: true,
        updated_at: sql<Date>`now()` as never,
      })
      .onConflict((oc) => oc.column('common_id').doNothing())
      .returningAll()
      .executeTakeFirst();
  }

  /** `lock`: hold the row until the unit of work ends, so a check made on it (a version) still holds at the write. */
  findById(id: string, lock = false): Promise<AccountRow | undefined> {
    if (!isUuid(id)) return Promise.resolve(undefined);
    return (
      this.#db
        .selectFrom('account')
        .selectAll()
        .where('id', '=', id)
        // Not FOR UPDATE: that would also block every insert that refers to the account (a sign-in's log row).
        .$if(lock, (q) => q.forNoKeyUpdate())
        .executeTakeFirst()
    );
  }

  findByCommonId(commonId: string): Promise<AccountRow | undefined> {
    return this.#db.selectFrom('account').selectAll().where('common_id', '=', commonId).executeTakeFirst();
  }

  findManyByCommonIds(commonIds: string[]): Promise<AccountRow[]> {
    if (commonIds.length === 0) return Promise.resolve([]);
    return this.#db.selectFrom('account').selectAll().where('common_id', 'in', commonIds).execute();
  }

  /**
   * `department` takes in the departments below it too ("eng" lists "eng/mech"); `text`: the start of a Common ID, or a part of a name (either script); `within`: a condition on
   * the account row, such as an operator's scope (src/operator/scope-condition.ts).
   */
  list(filter: { status?: AccountStatus; affiliation?: Affiliation; department?: string; text?: string; within?: Expression<SqlBool>; limit: number; after?: string }): Promise<AccountRow[]> {
    let query = this.#db.selectFrom('account').selectAll().orderBy('common_id').limit(filter.limit);
    if (filter.within) query = query.where(filter.within);
    const text = filter.text;
    if (text) {
      const pattern = `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      query = /^\d+$/.test(text)
        ? query.where('common_id', 'like', `${text}%`)
        : query.where((eb) =>
            eb.or(['name', 'family_name', 'given_name', 'family_name_ja', 'given_name_ja', 'family_name_kana', 'given_name_kana'].map((column) => eb(sql.ref(column), 'ilike', pattern))),
          );
    }
    if (filter.status) query = query.where('status', '=', filter.status);
    if (filter.affiliation) query = query.where('affiliation', '=', filter.affiliation);
    const unit = filter.department;
    // A code never holds "%"; its "_" is escaped so that LIKE takes it literally.
    if (unit) query = query.where((eb) => eb.or([eb('department', '=', unit), eb('department', 'like', `${unit.replaceAll('_', '\\_')}/%`)]));
    if (filter.after) query = query.where('common_id', '>', filter.after);
    return query.execute();
  }

  /**
   * With `replacing`, only while the hash is still that one (the password the person just proved):
   * of concurrent changes made with the same current password, one wins. Returns whether it changed.
   */
  async setPassword(id: string, passwordHash: string, mustChange: boolean, replacing?: string): Promise<boolean> {
    let update = this.#db
      .updateTable('account')
      .set({ password_hash: passwordHash, must_change_password: mustChange, password_set_at: this.#clock.now(), updated_at: sql<Date>`now()` as never })
      .where('id', '=', id);
    if (replacing !== undefined) update = update.where('password_hash', '=', replacing);
    const result = await update.executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /**
   * How many stored password hashes have each argon2 shape (type, version, memory, iterations,
   * lanes: `$argon2id$v=19$m=19456,t=2,p=1`), the most common first; a handful at most, since each
   * is a past setting of AKAMON_ARGON2_*. One scan of the table, every few minutes per node.
   */
  async hashShapes(limit = 8): Promise<Array<{ shape: string; count: number }>> {
    const shape = sql<string | null>`substring(password_hash from '^([$]argon2(?:d|i|id)[$]v=[0-9]+[$]m=[0-9]+,t=[0-9]+,p=[0-9]+)[$]')`;
    const rows = await this.#db
      .selectFrom('account')
      .select([shape.as('shape'), sql<string>`count(*)`.as('count')])
      .groupBy(sql`1`)
      .orderBy(sql`2`, 'desc')
      .limit(limit)
      .execute();
    return rows.flatMap((row) => (row.shape ? [{ shape: row.shape, count: Number(row.count) }] : []));
  }

  /** Replaces the hash only if it is still the one that was verified (a concurrent change wins). */
  async rehash(id: string, oldHash: string, newHash: string): Promise<void> {
    await this.#db.updateTable('account').set({ password_hash: newHash }).where('id', '=', id).where('password_hash', '=', oldHash).execute();
  }

  /** No recovery address: a reset by email goes to the university's address if it may, else nowhere. */
  async clearRecoveryEmail(id: string): Promise<void> {
    await this.#db
      .updateTable('account')
      .set({ recovery_email: null, recovery_email_verified_at: null, updated_at: sql<Date>`now()` as never })
      .where('id', '=', id)
      .execute();
  }

  /** A recovery address, confirmed by a code sent to it. */
  async setRecoveryEmail(id: string, email: string): Promise<void> {
    await this.#db
      .updateTable('account')
      .set({ recovery_email: email, recovery_email_verified_at: sql<Date>`now()` as never, updated_at: sql<Date>`now()` as never })
      .where('id', '=', id)
      .execute();
  }

  /**
   * One page of the accounts meeting `where` and `within` (an operator's scope), oldest first, and
   * how many meet them in all: SCIM's list (`startIndex`, `count`, `totalResults`).
   */
  async page(query: { where: Expression<SqlBool>; within: Expression<SqlBool>; offset: number; limit: number }): Promise<{ total: number; rows: AccountRow[] }> {
    const matching = this.#db.selectFrom('account').where(query.within).where(query.where);
    const counted = await matching.select(sql<string>`count(*)`.as('count')).executeTakeFirstOrThrow();
    const rows = query.limit > 0 ? await matching.selectAll().orderBy('created_at').orderBy('id').offset(query.offset).limit(query.limit).execute() : [];
    return { total: Number(counted.count), rows };
  }

  /** Sets the core fields (name, university-registered address, affiliation, external identifier) and answers the row as it now is. */
  updateCore(id: string, values: Partial<Pick<AccountRow, 'name' | 'email' | 'affiliation' | 'external_id'>>): Promise<AccountRow> {
    return this.#update(id, values);
  }

  /** Sets the fields and answers the row as it now is. */
  updateProfile(id: string, values: Partial<ProfileValues>): Promise<AccountRow> {
    return this.#update(id, values);
  }

  #update(id: string, values: Partial<ProfileValues> & Partial<Pick<AccountRow, 'name' | 'email' | 'affiliation' | 'external_id'>>): Promise<AccountRow> {
    return this.#db
      .updateTable('account')
      .set({ ...values, updated_at: sql<Date>`now()` as never })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /** "Later" on the MFA rollout notice: counted, and remembered for a day. */
  async postponeMfa(id: string, at: Date): Promise<void> {
    await this.#db
      .updateTable('account')
      .set((eb) => ({ mfa_postpone_count: eb('mfa_postpone_count', '+', 1), mfa_postponed_at: at }))
      .where('id', '=', id)
      .execute();
  }

  async setMfaRequired(id: string, required: boolean): Promise<void> {
    await this.#db
      .updateTable('account')
      .set({ mfa_required: required, updated_at: sql<Date>`now()` as never })
      .where('id', '=', id)
      .execute();
  }

  /** Revoking records when (the salvage period counts from it) and why, and settles any scheduled revocation. */
  async setStatus(id: string, status: AccountStatus, reason: string | null = null): Promise<void> {
    const lifecycle = status === 'revoked' ? { revoked_at: this.#clock.now(), revoke_at: null, revoke_reason: sql<string>`coalesce(${reason}, revoke_reason)` } : { revoked_at: null };
    await this.#db
      .updateTable('account')
      .set({ status, ...lifecycle, updated_at: sql<Date>`now()` as never })
      .where('id', '=', id)
      .execute();
  }
}
