import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';

export class EducationStore {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  /** Records a pass (idempotent: a second record of the same year keeps the new date). */
  async record(accountId: string, academicYear: number, passedOn: string): Promise<void> {
    await this.#db
      .insertInto('security_education')
      .values({ account_id: accountId, academic_year: academicYear, passed_on: passedOn })
      .onConflict((oc) => oc.columns(['account_id', 'academic_year']).doUpdateSet({ passed_on: passedOn, recorded_at: sql<Date>`now()` as never }))
      .execute();
  }

  async passedOn(accountId: string, academicYear: number): Promise<string | undefined> {
    const row = await this.#db
      .selectFrom('security_education')
      .select(sql<string>`passed_on::text`.as('passed_on'))
      .where('account_id', '=', accountId)
      .where('academic_year', '=', academicYear)
      .executeTakeFirst();
    return row?.passed_on;
  }
}
