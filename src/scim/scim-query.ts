import { sql, type RawBuilder } from 'kysely';
import { isUuid } from '../shared/uuid.ts';
import { ScimError } from './scim-error.ts';
import type { CompareOp, Filter, Value } from './scim-filter.ts';
import { AKAMON_SCHEMA, ENTERPRISE_SCHEMA, resolvePath } from './scim-schema.ts';
import { excerpt } from '../shared/text.ts';

type Kind = 'text' | 'exact' | 'date' | 'uuid' | 'active';

/**
 * The attributes a list may filter on, and the column each reads. `text` compares ignoring case (as
 * RFC 7643 has these caseExact false); `exact` as given. Other attributes are refused, not ignored.
 */
const COLUMNS: Record<string, { column: string; kind: Kind }> = {
  id: { column: 'id', kind: 'uuid' },
  userName: { column: 'common_id', kind: 'exact' },
  externalId: { column: 'external_id', kind: 'exact' },
  'meta.lastModified': { column: 'updated_at', kind: 'date' },
  'meta.created': { column: 'created_at', kind: 'date' },
  active: { column: 'status', kind: 'active' },
  displayName: { column: 'name', kind: 'text' },
  'name.formatted': { column: 'name', kind: 'text' },
  'name.familyName': { column: 'family_name', kind: 'text' },
  'name.givenName': { column: 'given_name', kind: 'text' },
  emails: { column: 'email', kind: 'text' },
  'emails.value': { column: 'email', kind: 'text' },
  [`${ENTERPRISE_SCHEMA}:department`]: { column: 'department', kind: 'exact' },
  [`${AKAMON_SCHEMA}:affiliation`]: { column: 'affiliation', kind: 'exact' },
  [`${AKAMON_SCHEMA}:familyNameJa`]: { column: 'family_name_ja', kind: 'text' },
  [`${AKAMON_SCHEMA}:givenNameJa`]: { column: 'given_name_ja', kind: 'text' },
  [`${AKAMON_SCHEMA}:familyNameKana`]: { column: 'family_name_kana', kind: 'text' },
  [`${AKAMON_SCHEMA}:givenNameKana`]: { column: 'given_name_kana', kind: 'text' },
};

const OPERATORS: Record<'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le', string> = { eq: '=', ne: '<>', gt: '>', lt: '<', ge: '>=', le: '<=' };

const refuse = (detail: string): never => {
  throw new ScimError(400, 'invalidFilter', detail);
};

const likePattern = (op: 'co' | 'sw' | 'ew', value: string) => {
  const escaped = value.replace(/[\\%_]/g, (c) => `\\${c}`);
  return op === 'co' ? `%${escaped}%` : op === 'sw' ? `${escaped}%` : `%${escaped}`;
};

function comparison(key: string, op: CompareOp, value: Value, userName: (value: string) => string): RawBuilder<boolean> {
  const { column, kind } = COLUMNS[key]!;
  const ref = sql.ref(`account.${column}`);
  if (kind === 'active') {
    if (typeof value !== 'boolean' || (op !== 'eq' && op !== 'ne')) return refuse('active takes eq or ne with true or false');
    return (value === (op === 'eq') ? sql`${ref} = 'active'` : sql`${ref} <> 'active'`) as RawBuilder<boolean>;
  }
  if (typeof value !== 'string') return refuse(`${key} compares with a "quoted" value`);
  if (kind === 'uuid') {
    if (op !== 'eq' && op !== 'ne') return refuse('id takes eq or ne');
    // Not a uuid: no account has it (and the database would refuse the comparison).
    if (!isUuid(value)) return (op === 'eq' ? sql`false` : sql`true`) as RawBuilder<boolean>;
    return sql<boolean>`${ref} ${sql.raw(OPERATORS[op])} ${value}::uuid`;
  }
  if (kind === 'date') {
    const at = new Date(value);
    // With its offset (RFC 7643 dateTime): a time without one would be read in this server's own zone.
    if (Number.isNaN(at.getTime()) || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(value)) {
      return refuse(`${key} compares with a date and time with its offset, such as "2026-04-01T00:00:00Z"`);
    }
    if (op === 'co' || op === 'sw' || op === 'ew') return refuse(`${key} takes eq, ne, gt, ge, lt or le`);
    // To the millisecond, as meta shows it: `gt` the lastModified a client saw excludes that very change.
    return sql<boolean>`date_trunc('milliseconds', ${ref}) ${sql.raw(OPERATORS[op])} ${at}`;
  }
  const given = key === 'userName' ? userName(value) : value;
  const [left, right] = kind === 'text' ? [sql`lower(${ref})`, given.toLowerCase()] : [ref, given];
  if (op === 'co' || op === 'sw' || op === 'ew') return sql<boolean>`${left} like ${likePattern(op, right)}`;
  // ne: an account without the attribute differs from any value (RFC 7644 3.4.2.2).
  if (op === 'ne') return sql<boolean>`(${left} is null or ${left} <> ${right})`;
  return sql<boolean>`${left} ${sql.raw(OPERATORS[op])} ${right}`;
}

/**
 * The filter as a condition on the `account` row. `userName` turns a realm-qualified Common ID
 * into the plain one, so `userName eq "0123456789@utac.u-tokyo.ac.jp"` finds the account.
 */
export function filterCondition(filter: Filter, userName: (value: string) => string): RawBuilder<boolean> {
  switch (filter.op) {
    case 'and':
    case 'or':
      return sql<boolean>`(${filterCondition(filter.left, userName)} ${sql.raw(filter.op)} ${filterCondition(filter.right, userName)})`;
    case 'not':
      return sql<boolean>`not coalesce(${filterCondition(filter.filter, userName)}, false)`;
    case 'has': {
      // emails[type eq "work" and value co "@"]: the only email is the work one.
      const { key } = resolvePath(filter.path, 'invalidFilter');
      if (key !== 'emails') return refuse(`${filter.path} is not a multi-valued attribute that can be filtered in brackets`);
      return workEmail(filter.filter, userName);
    }
    case 'pr': {
      const { key } = resolvePath(filter.path, 'invalidFilter');
      const spec = COLUMNS[key] ?? refuse(`${key} cannot be filtered on`);
      return spec.kind === 'active' ? sql<boolean>`true` : sql<boolean>`${sql.ref(`account.${spec.column}`)} is not null`;
    }
    default: {
      const { key } = resolvePath(filter.path, 'invalidFilter');
      if (!COLUMNS[key]) refuse(`${key} cannot be filtered on; the list filters on ${Object.keys(COLUMNS).join(', ')}`);
      return comparison(key, filter.op, filter.value, userName);
    }
  }
}

/** A filter inside emails[...]: on `value` (the address), `type` (always work) and `primary` (always true). */
function workEmail(filter: Filter, userName: (value: string) => string): RawBuilder<boolean> {
  switch (filter.op) {
    case 'and':
    case 'or':
      return sql<boolean>`(${workEmail(filter.left, userName)} ${sql.raw(filter.op)} ${workEmail(filter.right, userName)})`;
    case 'not':
      return sql<boolean>`not coalesce(${workEmail(filter.filter, userName)}, false)`;
    case 'has':
      return refuse('a filter in brackets cannot hold another one');
    default: {
      const name = filter.path.toLowerCase();
      const present = sql<boolean>`account.email is not null`;
      if (name === 'value') return filter.op === 'pr' ? present : comparison('emails.value', filter.op, filter.value, userName);
      if (name === 'type' || name === 'primary') {
        const holds = filter.op === 'pr' || (filter.op === 'eq' && (name === 'type' ? typeof filter.value === 'string' && filter.value.toLowerCase() === 'work' : filter.value === true));
        return holds ? present : sql<boolean>`false`;
      }
      return refuse(`emails has value, type and primary, not ${excerpt(filter.path)}`);
    }
  }
}
