import { sql, type RawBuilder } from 'kysely';
import { remember, writing } from '../shared/request-memo.ts';
import { UUID_PATTERN } from '../shared/uuid.ts';

/**
 * The request-memo keys of oidc-provider's rows (the `oidc_payload` table) begin with this: the
 * adapter reads under it, and every write to the table forgets them, whether the adapter makes it
 * or another store does (deleting a client deletes its tokens). It lives with the database so that
 * both the provider and the domain's stores can write the table without importing each other.
 */
export const PROVIDER_ROWS_MEMO_PREFIX = 'oidc:';

/** The columns the provider finds its rows by. */
export type ProviderRowColumn = 'id' | 'uid' | 'user_code';

/** The request-memo key of the provider's read of a `model` row by `column` (the adapter's, and any statement that reads the row on its way). */
export const providerRowMemoKey = (model: string, column: ProviderRowColumn, value: string) => `${PROVIDER_ROWS_MEMO_PREFIX}${model}:${column}:${value}`;

/** A row of the provider's table as read: its payload, and when it was consumed. */
export interface StoredProviderRow {
  payload: unknown;
  consumed_at: Date | string | null;
}

/** The payload the provider is given for a row: its `consumed` is the row's consumed_at, in seconds. */
export function storedPayload(row: StoredProviderRow): Record<string, unknown> {
  const payload = row.payload as Record<string, unknown>;
  if (row.consumed_at) payload.consumed = Math.floor(new Date(row.consumed_at).getTime() / 1000);
  return payload;
}

/**
 * Leaves a `model` row read by `column` by another statement (`row`, or undefined: there is none) for
 * the provider's own read of it later in this request, as the adapter's reads bring rows along.
 */
export function rememberProviderRow(model: string, column: ProviderRowColumn, value: string, row: StoredProviderRow | undefined): void {
  remember(providerRowMemoKey(model, column, value), row && storedPayload(row));
}

/** A system the account has granted access to (its grants still in force), as the account home lists it. */
export interface ConnectedClient {
  clientId: string;
  /** The scopes its grants hold, in the order first granted. */
  scopes: string[];
  /** When its first grant still in force was made. */
  since: Date;
  /** Whether it holds a refresh token (it stays connected while the person is away). */
  offline: boolean;
}

/** For every write to the provider's table (see request-memo's `writing`). */
export const writingProviderRows = <T>(write: () => Promise<T>) => writing(PROVIDER_ROWS_MEMO_PREFIX, write);

/** The row of `table` (a name or an alias of `oidc_payload`) has not expired. */
export const live = (table: string) => sql<boolean>`(${sql.ref(`${table}.expires_at`)} is null or ${sql.ref(`${table}.expires_at`)} > now())`;

/** A provider row's account_id (text: any string to the provider) as the uuid of an account, or NULL: Akamon's ids are uuids, and only those are looked up. */
export const accountUuid = (accountId: RawBuilder<unknown> | ReturnType<typeof sql.ref>) => sql`case when ${accountId} ~* ${UUID_PATTERN} then ${accountId}::uuid end`;

/**
 * The row `table` (a name or an alias of `oidc_payload`: a Session or a Grant) began after its
 * account's sessions were last ended (`account.sessions_ended_at`). Ending them deletes the rows at
 * once, but a request that loaded one before (a silent sign-in in flight, on any node) saves it
 * again when it finishes; such a row began earlier, so this condition keeps it dead wherever it is
 * read. A Session begins at its sign-in (`signedInAt`), a Grant when it was made (`iat`); both are whole
 * seconds, so the comparison is with the second the sessions ended in: a sign-in in that same second
 * counts as after it (a person signing in again at once is not sent round).
 */
export function begunAfterSessionsEnded(table: string, model: 'Session' | 'Grant') {
  const payload = sql.ref(`${table}.payload`);
  // A second factor moves a session's loginTs, its sign-in does not (session-lifetime.ts).
  const begun = model === 'Session' ? sql`coalesce(${payload}->>'signedInAt', ${payload}->>'loginTs')` : sql`${payload}->>'iat'`;
  return sql<boolean>`coalesce((${begun})::bigint, 0) >= coalesce((select floor(extract(epoch from a.sessions_ended_at))::bigint from account a where a.id = ${accountUuid(sql.ref(`${table}.account_id`))}), 0)`;
}
