import { sql, type Kysely, type Selectable } from 'kysely';
import { lockAccountRow } from '../db/row-locks.ts';
import type { DB, HardwareTokenTable } from '../db/schema.ts';
import { FACTORS_MEMO, isFirstFactor, keepOneDefault } from './mfa.store.ts';
import { writing } from '../shared/request-memo.ts';

export type TokenRow = Selectable<HardwareTokenTable> & { common_id: string | null };

/** Lent OATH hardware tokens: loaded by operators, assigned to one account at a time. */
export class TokenStore {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  async insert(token: { serial: string; secretEnc: string; digits: number; period: number }): Promise<boolean> {
    const row = await this.#db
      .insertInto('hardware_token')
      .values({ serial: token.serial, secret_enc: token.secretEnc, digits: token.digits, period: token.period })
      .onConflict((oc) => oc.column('serial').doNothing())
      .returning('serial')
      .executeTakeFirst();
    return row !== undefined;
  }

  list(): Promise<TokenRow[]> {
    return this.#db.selectFrom('hardware_token').leftJoin('account', 'account.id', 'hardware_token.assigned_to').selectAll('hardware_token').select('account.common_id').orderBy('serial').execute();
  }

  /**
   * Lends a free token: marks it and adds it as a factor of the account, in one transaction, so
   * a token is never lent twice and never half-lent. Returns false when it is taken or unknown.
   */
  async assign(serial: string, accountId: string): Promise<boolean> {
    return writing(FACTORS_MEMO, () =>
      this.#db.transaction().execute(async (trx) => {
        await lockAccountRow(trx, accountId);
        const token = await trx
          .updateTable('hardware_token')
          .set({ assigned_to: accountId, assigned_at: sql<Date>`now()` as never })
          .where('serial', '=', serial)
          .where('assigned_to', 'is', null)
          .returningAll()
          .executeTakeFirst();
        if (!token) return false;
        await trx
          .insertInto('mfa_factor')
          .values({
            account_id: accountId,
            kind: 'token',
            label: `Token ${serial}`,
            secret_enc: token.secret_enc,
            digits: token.digits,
            period: token.period,
            token_serial: serial,
            is_default: isFirstFactor(accountId) as never,
          })
          .execute();
        return true;
      }),
    );
  }

  /** The account a token is lent to: its id, null when it is in stock, undefined when there is no such token. */
  async lentTo(serial: string): Promise<string | null | undefined> {
    return (await this.#db.selectFrom('hardware_token').select('assigned_to').where('serial', '=', serial).executeTakeFirst())?.assigned_to;
  }

  /** Takes a token back: the account loses it as a factor. Returns the account it was lent to. */
  async unassign(serial: string): Promise<string | null | undefined> {
    return writing(FACTORS_MEMO, () =>
      this.#db.transaction().execute(async (trx) => {
        // Locks in the order every factor write takes them: the account's row, then the token's.
        const lentTo = (await trx.selectFrom('hardware_token').select('assigned_to').where('serial', '=', serial).executeTakeFirst())?.assigned_to;
        if (lentTo) await lockAccountRow(trx, lentTo);
        const token = await trx.selectFrom('hardware_token').select('assigned_to').where('serial', '=', serial).forUpdate().executeTakeFirst();
        if (!token) return undefined;
        if (token.assigned_to && token.assigned_to !== lentTo) await lockAccountRow(trx, token.assigned_to);
        await trx.deleteFrom('mfa_factor').where('token_serial', '=', serial).execute();
        await trx.updateTable('hardware_token').set({ assigned_to: null, assigned_at: null }).where('serial', '=', serial).execute();
        if (token.assigned_to) await keepOneDefault(trx, token.assigned_to);
        return token.assigned_to;
      }),
    );
  }
}
