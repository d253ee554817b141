/** A canonical UUID, case-insensitive (as Postgres' uuid type accepts): for JavaScript and for SQL's `~*`. */
export const UUID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
const UUID = new RegExp(UUID_PATTERN, 'i');

/** A canonical UUID (as Postgres' uuid type accepts), checked before it reaches a query. */
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}
