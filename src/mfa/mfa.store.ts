import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { holdWrite } from '../db/one-statement.ts';
import { lockAccountRow } from '../db/row-locks.ts';
import { DomainError } from '../shared/errors.ts';
import { isUuid } from '../shared/uuid.ts';
import { memoised, remember, writing } from '../shared/request-memo.ts';
import { ACCOUNT_COLUMNS, type AccountRow } from '../account/account.store.ts';
import { prepared } from '../db/prepared.ts';
import { compiledOnce } from '../db/compiled-once.ts';
import type { DB, FactorKind, MfaFactorTable } from '../db/schema.ts';

export type FactorRow = Selectable<MfaFactorTable>;

/**
 * The request memo's prefix of factor reads (request-memo.ts). Every write of factors goes through
 * `writing(FACTORS_MEMO, ...)`, so a read after it in the same request goes to the database.
 */
export const FACTORS_MEMO = 'mfa-factors:';

/** A factor's row as json_agg writes it: timestamps as text, the 64-bit counter as a number. */
type FactorJson = Omit<FactorRow, 'created_at' | 'last_used_at' | 'sign_count'> & { created_at: string; last_used_at: string | null; sign_count: number };

const factorFromJson = (factor: FactorJson): FactorRow => ({
  ...factor,
  created_at: new Date(factor.created_at),
  last_used_at: factor.last_used_at === null ? null : new Date(factor.last_used_at),
  sign_count: String(factor.sign_count),
});

/**
 * An account with factors has exactly one default. Every write that adds or removes factors holds
 * the account's row lock (so two at once cannot both make a default, or both remove one) and ends
 * with this: a new factor is the default when it is the only one, and when the default went, the
 * oldest factor left takes its place.
 */
export const isFirstFactor = (accountId: string) => sql<boolean>`not exists (select 1 from mfa_factor where account_id = ${accountId})`;

export async function keepOneDefault(trx: Transaction<DB>, accountId: string): Promise<void> {
  await trx
    .updateTable('mfa_factor')
    .set({ is_default: true })
    .where('id', '=', (eb) => eb.selectFrom('mfa_factor').select('id').where('account_id', '=', accountId).orderBy('created_at').limit(1))
    .where(sql<boolean>`not exists (select 1 from mfa_factor where account_id = ${accountId} and is_default)`)
    .execute();
}

/** The account's row (every column, by name) and its factors as JSON, by `column`. */
const accountWithFactorsBy = (column: 'id' | 'common_id') =>
  compiledOnce<{ value: string }, Pick<AccountRow, (typeof ACCOUNT_COLUMNS)[number]> & { mfa_factors: FactorJson[] }>((bind) =>
    prepared(sql`
      select ${sql.join(ACCOUNT_COLUMNS.map((name) => sql.ref(`account.${name}`)))},
        coalesce((select json_agg(f order by f.is_default desc, f.created_at) from mfa_factor f where f.account_id = account.id), '[]') as mfa_factors
      from account where ${sql.ref(`account.${column}`)} = ${bind('value')}`),
  );
const ACCOUNT_WITH_FACTORS = { id: accountWithFactorsBy('id'), common_id: accountWithFactorsBy('common_id') };

export class MfaStore {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  /** Read once per request (a challenge's page and its check both ask); each caller gets its own copy. */
  async factors(accountId: string): Promise<FactorRow[]> {
    const rows = await memoised(FACTORS_MEMO + accountId, () =>
      this.#db.selectFrom('mfa_factor').selectAll().where('account_id', '=', accountId).orderBy('is_default', 'desc').orderBy('created_at').execute(),
    );
    return rows.map((row) => ({ ...row }));
  }

  /**
   * The account's row and its factors (in the order of factors()) in one statement: what the checks
   * of a sign-in read together. The factors travel as JSON, so their dates and counter are restored.
   */
  accountWithFactors(accountId: string): Promise<{ account: AccountRow; factors: FactorRow[] } | undefined> {
    return isUuid(accountId) ? this.#withFactors('id', accountId) : Promise.resolve(undefined);
  }

  /** The same, by Common ID: the password step's read, whose factors then tell what comes after it. */
  accountWithFactorsByCommonId(commonId: string): Promise<{ account: AccountRow; factors: FactorRow[] } | undefined> {
    return this.#withFactors('common_id', commonId);
  }

  /** Read at every password and every resume of a sign-in, by a key: prepared (db/prepared.ts), so its columns are named, and compiled once. */
  async #withFactors(column: 'id' | 'common_id', value: string): Promise<{ account: AccountRow; factors: FactorRow[] } | undefined> {
    const { rows } = await ACCOUNT_WITH_FACTORS[column](this.#db, { value });
    const row = rows[0];
    if (!row) return undefined;
    const { mfa_factors: factors, ...rest } = row;
    const account: AccountRow = rest;
    const restored = factors.map(factorFromJson);
    // Later reads of the factors in this request (the sign-in's checks) get these, until a write of factors.
    remember(FACTORS_MEMO + account.id, restored);
    return { account, factors: restored.map((factor) => ({ ...factor })) };
  }

  /** The first factor of an account becomes its default. */
  async insert(factor: {
    accountId: string;
    kind: FactorKind;
    label: string;
    secretEnc?: string | null;
    credential?: { id: string; publicKey: string; signCount: number; transports: string[] };
  }): Promise<FactorRow> {
    return this.#transaction(async (trx) => {
      await lockAccountRow(trx, factor.accountId);
      return trx
        .insertInto('mfa_factor')
        .values({
          account_id: factor.accountId,
          kind: factor.kind,
          label: factor.label,
          secret_enc: factor.secretEnc ?? null,
          credential_id: factor.credential?.id ?? null,
          public_key: factor.credential?.publicKey ?? null,
          sign_count: factor.credential?.signCount ?? 0,
          transports: factor.credential?.transports.join(',') ?? null,
          is_default: isFirstFactor(factor.accountId) as never,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
    });
  }

  /** Marks the factor used now; inside a step's turn, with the statement that ends it (one-at-a-time.ts). */
  async touch(factorId: string): Promise<void> {
    const touching = this.#db
      .updateTable('mfa_factor')
      .set({ last_used_at: sql<Date>`now()` as never })
      .where('id', '=', factorId);
    await writing(FACTORS_MEMO, async () => {
      if (!holdWrite(`mfa_factor:${factorId}`, touching)) await touching.execute();
    });
  }

  /**
   * Records a WebAuthn signature counter. It must grow (or stay 0 for authenticators without one);
   * the condition in the UPDATE also settles two concurrent uses of a cloned authenticator.
   */
  async advanceCounter(factorId: string, counter: number): Promise<boolean> {
    const row = await writing(FACTORS_MEMO, () =>
      this.#db
        .updateTable('mfa_factor')
        .set({ sign_count: counter, last_used_at: sql<Date>`now()` as never })
        .where('id', '=', factorId)
        .where(sql<boolean>`sign_count < ${counter} or (sign_count = 0 and ${counter}::bigint = 0)`)
        .returning('id')
        .executeTakeFirst(),
    );
    return row !== undefined;
  }

  /**
   * One factor of the account (a lent token becomes free to lend again); the default passes to the
   * oldest left. With `keepLast` the account's only factor stays (DomainError last_method): counted
   * under the account's row lock, so two removals at once cannot take the last two together.
   */
  async deleteOne(accountId: string, factorId: string, options: { keepLast?: boolean } = {}): Promise<boolean> {
    return this.#transaction(async (trx) => {
      await lockAccountRow(trx, accountId);
      if (options.keepLast) {
        const left = await trx.selectFrom('mfa_factor').select('id').where('account_id', '=', accountId).execute();
        if (left.length === 1 && left[0].id === factorId) throw new DomainError('last_method', 'the only sign-in method of an account that must use MFA cannot be removed');
      }
      const removed = await trx.deleteFrom('mfa_factor').where('account_id', '=', accountId).where('id', '=', factorId).returning(['token_serial']).executeTakeFirst();
      if (!removed) return false;
      if (removed.token_serial) await trx.updateTable('hardware_token').set({ assigned_to: null, assigned_at: null }).where('serial', '=', removed.token_serial).execute();
      await keepOneDefault(trx, accountId);
      return true;
    });
  }

  async setDefault(accountId: string, factorId: string): Promise<boolean> {
    return this.#transaction(async (trx) => {
      await lockAccountRow(trx, accountId);
      const exists = await trx.selectFrom('mfa_factor').select('id').where('account_id', '=', accountId).where('id', '=', factorId).executeTakeFirst();
      if (!exists) return false;
      await trx
        .updateTable('mfa_factor')
        .set({ is_default: sql<boolean>`id = ${factorId}` as never })
        .where('account_id', '=', accountId)
        .execute();
      return true;
    });
  }

  /**
   * Every factor of the account; tokens lent to it become free to lend again. The account row
   * first, as every factor write takes it: inside a longer unit (an operator's reset with its audit
   * record) the other order deadlocked with the person's own factor changes.
   */
  async deleteAll(accountId: string): Promise<number> {
    return this.#transaction(async (trx) => {
      await lockAccountRow(trx, accountId);
      const result = await trx.deleteFrom('mfa_factor').where('account_id', '=', accountId).executeTakeFirst();
      await trx.updateTable('hardware_token').set({ assigned_to: null, assigned_at: null }).where('assigned_to', '=', accountId).execute();
      return Number(result.numDeletedRows);
    });
  }

  /** A transaction that writes factors (see FACTORS_MEMO). */
  #transaction<T>(work: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
    return writing(FACTORS_MEMO, () => this.#db.transaction().execute(work));
  }

  /** Records a used TOTP time step; false if it was used before (a replay). One atomic insert. */
  async consumeStep(accountId: string, step: number): Promise<boolean> {
    const row = await this.#db
      .insertInto('totp_step')
      .values({ account_id: accountId, step })
      .onConflict((oc) => oc.columns(['account_id', 'step']).doNothing())
      .returning('step')
      .executeTakeFirst();
    return row !== undefined;
  }

  async deleteOldSteps(limit: number): Promise<number> {
    const result = await sql`
      with doomed as (select account_id, step from totp_step where used_at < now() - interval '10 minutes' limit ${limit})
      delete from totp_step t using doomed d where t.account_id = d.account_id and t.step = d.step`.execute(this.#db);
    return Number(result.numAffectedRows ?? 0);
  }
}
