import type { FindAccount } from 'oidc-provider';
import type { AccountRow, AccountStore } from '../account/account.store.ts';
import type { MfaStore } from '../mfa/mfa.store.ts';
import { recalled } from '../shared/request-memo.ts';
import { tokenAccountMemoKey } from './adapter.ts';
import type { AccessService } from '../access/access.service.ts';
import type { ClientStore } from '../client/client.store.ts';
import { signInMethods } from './token-sign-in.ts';
import { accountClaims, type ClaimSettings } from './claims.ts';
import { carriedForms } from './claims-locales.ts';

/**
 * The claims of an account, and the one gate for tokens. Interactions see every account (a
 * suspended one must reach the page that says so). Anything presenting a token sees the account
 * only while the token's client still admits it, by the same evaluation as the authorization
 * endpoint plus the MFA demand against what the token's sign-in showed: oidc-provider asks here
 * for userinfo and for every grant that redeems a token (code, refresh), the introspection policy
 * asks here (provider.ts), so a suspension or a rule change ends those tokens at once, on every
 * node, and a path added later that loads a token's account is covered by the same gate. A
 * revoked account signed in at a salvage client carries `salvage: true`. The claims themselves are
 * composed in claims.ts.
 */
export function findAccount(accounts: AccountStore, mfa: MfaStore, clients: ClientStore, access: AccessService, settings: ClaimSettings): FindAccount {
  return async (ctx, id, token) => {
    // A token's account came with the token's own read in this request (adapter.ts), when it did.
    // In an interaction the sign-in steps' checks need the account's factors too: read with it (the
    // request memo keeps them for the checks).
    const account = token ? ((await recalled<AccountRow | undefined>(tokenAccountMemoKey(id))) ?? (await accounts.findById(id))) : (await mfa.accountWithFactors(id))?.account;
    if (!account) return undefined;
    // The client's row is read only when it matters: a token's client must admit the account, and
    // a revoked account may carry the salvage claim. Active accounts in an interaction skip the query.
    const clientId = token?.clientId ?? (account.status === 'revoked' ? ctx.oidc?.client?.clientId : undefined);
    const client = clientId ? await clients.find(clientId) : undefined;
    if (token && (!client || !(await access.decide(account, client, { amr: signInMethods(token) })).allowed)) return undefined;
    // A closed account at a data-salvage client: the relying party should offer export only.
    const salvage = account.status === 'revoked' && client?.salvage === true ? true : undefined;
    return {
      accountId: account.id,
      // The row as read here: the sign-in steps' checks of this request use it (interaction/facts.ts)
      // rather than reading the account again right after the provider did.
      accountRow: account,
      async claims() {
        // The token's claims_locales (claims-locales.ts); in an interaction, the request's own.
        const forms = carriedForms(token ?? ctx.oidc);
        return { ...accountClaims(account, forms, settings), salvage };
      },
    };
  };
}
