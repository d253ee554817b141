import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { lockAccountRow } from '../db/row-locks.ts';
import { OTP_CODE_MAX_ATTEMPTS, OTP_CODE_TTL_SECONDS } from '../config/defaults.ts';

export const CODE_TTL_SECONDS = OTP_CODE_TTL_SECONDS;
export const CODE_MAX_ATTEMPTS = OTP_CODE_MAX_ATTEMPTS;

export type CodeCheck = 'ok' | 'wrong' | 'expired_or_used';

/** Codes sent to a person (SMS, voice, email): stored as digests, consumed by one atomic UPDATE. */
export class OtpCodeStore {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  /**
   * A new code replaces any earlier one for the same purpose. Under the account's row lock, so two
   * sends at the same moment cannot both insert: one live code per purpose, always.
   */
  async issue(accountId: string, purpose: string, codeDigest: string): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      await lockAccountRow(trx, accountId);
      await trx.deleteFrom('otp_code').where('account_id', '=', accountId).where('purpose', '=', purpose).execute();
      await trx
        .insertInto('otp_code')
        .values({
          account_id: accountId,
          purpose,
          code_digest: codeDigest,
          expires_at: sql<Date>`now() + make_interval(secs => ${CODE_TTL_SECONDS})` as never,
        })
        .execute();
    });
  }

  /** Withdraws a code that could not be delivered. */
  async withdraw(accountId: string, purpose: string): Promise<void> {
    await this.#db.deleteFrom('otp_code').where('account_id', '=', accountId).where('purpose', '=', purpose).where('consumed_at', 'is', null).execute();
  }

  /**
   * Uses up the code if it matches, in one statement: of concurrent tries at most one succeeds.
   * A wrong try costs one of the code's attempts.
   */
  async consume(accountId: string, purpose: string, codeDigest: string): Promise<CodeCheck> {
    const used = await this.#db
      .updateTable('otp_code')
      .set({ consumed_at: sql<Date>`now()` as never })
      .where('account_id', '=', accountId)
      .where('purpose', '=', purpose)
      .where('code_digest', '=', codeDigest)
      .where('consumed_at', 'is', null)
      .where('expires_at', '>', sql<Date>`now()`)
      .where('attempts', '<', CODE_MAX_ATTEMPTS)
      .returning('id')
      .executeTakeFirst();
    if (used) return 'ok';
    const counted = await this.#db
      .updateTable('otp_code')
      .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
      .where('account_id', '=', accountId)
      .where('purpose', '=', purpose)
      .where('consumed_at', 'is', null)
      .where('expires_at', '>', sql<Date>`now()`)
      .where('attempts', '<', CODE_MAX_ATTEMPTS)
      .returning('attempts')
      .executeTakeFirst();
    return counted ? 'wrong' : 'expired_or_used';
  }

  async deleteOld(limit: number): Promise<number> {
    const result = await sql`
      with doomed as (select id from otp_code where expires_at < now() - interval '1 day' limit ${limit})
      delete from otp_code where id in (select id from doomed)`.execute(this.#db);
    return Number(result.numAffectedRows ?? 0);
  }
}
