import type { KoaContextWithOIDC } from 'oidc-provider';
import type { AccountStore } from '../account/account.store.ts';
import type { Facts } from './step.ts';

/**
 * Loads the facts of one authorization request once, however many checks ask: the provider runs
 * the checks of a prompt concurrently. Keyed by the request's context, so nothing is shared.
 */
export function factsLoader(accounts: AccountStore): (ctx: KoaContextWithOIDC) => Promise<Facts> {
  const cache = new WeakMap<object, Promise<Facts>>();
  return (ctx) => {
    let facts = cache.get(ctx);
    if (!facts) {
      const accountId = ctx.oidc.session?.accountId;
      facts = (async () => ({ account: accountId ? await accounts.findById(accountId) : undefined }))();
      cache.set(ctx, facts);
    }
    return facts;
  };
}
