import { sql, type RawBuilder } from 'kysely';
import type { Scope } from './permissions.ts';

/**
 * The operator's scope as SQL on the `account` table (joined or selected), for lists: the same
 * rule as inScope, so a list never shows an account the account page would deny. True for the
 * whole university; on a left join, rows without an account fall outside any limited scope.
 */
export function scopeCondition(scope: Scope | null): RawBuilder<boolean> {
  const parts: RawBuilder<unknown>[] = [];
  if (scope?.departments.length) {
    // A code never holds "%"; its "_" is escaped so that LIKE takes it literally.
    const units = scope.departments.map((unit) => sql`(account.department = ${unit} or account.department like ${`${unit.replaceAll('_', '\\_')}/%`})`);
    parts.push(sql`(${sql.join(units, sql` or `)})`);
  }
  if (scope?.affiliations.length) parts.push(sql`account.affiliation in (${sql.join([...scope.affiliations])})`);
  return parts.length ? sql<boolean>`(${sql.join(parts, sql` and `)})` : sql<boolean>`true`;
}
