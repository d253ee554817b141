import type { FindAccount } from 'oidc-provider';
import type { AccountStore } from '../account/account.store.ts';

/**
 * The claims of an account. Interactions see every account (a suspended one must reach the page
 * that says so); anything presenting a token (userinfo, refresh, introspection) sees only active
 * accounts, so tokens of a suspended or revoked account stop working at once.
 */
export function findAccount(accounts: AccountStore): FindAccount {
  return async (_ctx, id, token) => {
    const account = await accounts.findById(id);
    if (!account || (token && account.status !== 'active')) return undefined;
    return {
      accountId: account.id,
      async claims() {
        return {
          sub: account.id,
          name: account.name,
          preferred_username: account.common_id,
          email: account.email ?? undefined,
          affiliation: account.affiliation,
        };
      },
    };
  };
}
