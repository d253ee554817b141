import { writing } from '../shared/request-memo.ts';

/**
 * The request-memo keys of oidc-provider's rows (the `oidc_payload` table) begin with this: the
 * adapter reads under it, and every write to the table forgets them, whether the adapter makes it
 * or another store does (deleting a client deletes its tokens). It lives with the database so that
 * both the provider and the domain's stores can write the table without importing each other.
 */
export const PROVIDER_ROWS_MEMO_PREFIX = 'oidc:';

/** For every write to the provider's table (see request-memo's `writing`). */
export const writingProviderRows = <T>(write: () => Promise<T>) => writing(PROVIDER_ROWS_MEMO_PREFIX, write);
