import type { FindAccount } from 'oidc-provider';
import type { AccountStore } from '../account/account.store.ts';
import type { AccessService } from '../access/access.service.ts';
import type { ClientStore } from '../client/client.store.ts';

/**
 * The claims of an account. Interactions see every account (a suspended one must reach the page
 * that says so); anything presenting a token (userinfo, refresh, introspection) sees the account
 * only while the token's client still admits it, so a suspension or a rule change ends those
 * tokens at once.
 */
export function findAccount(accounts: AccountStore, clients: ClientStore, access: AccessService): FindAccount {
  return async (_ctx, id, token) => {
    const account = await accounts.findById(id);
    if (!account) return undefined;
    if (token) {
      const client = token.clientId ? await clients.find(token.clientId) : undefined;
      if (!client || !(await access.decide(account, client)).allowed) return undefined;
    }
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
