import type { KoaContextWithOIDC } from 'oidc-provider';
import type { AccountRow, AccountStore } from '../account/account.store.ts';
import type { ClientStore } from '../client/client.store.ts';
import type { MfaStore } from '../mfa/mfa.store.ts';
import type { AccessService } from '../access/access.service.ts';
import type { Clock } from '../shared/clock.ts';
import { rolloutPhase, type RolloutDates } from '../mfa/rollout.ts';
import type { Facts } from './step.ts';

/**
 * The account row the provider's findAccount (src/oidc/find-account.ts) read for the session's
 * account earlier in this request: the provider loads the account before it runs the checks, so
 * the checks see the same row without a second query.
 */
function loadedBefore(ctx: KoaContextWithOIDC, accountId: string): AccountRow | undefined {
  const loaded = ctx.oidc.account as { accountId?: string; accountRow?: AccountRow } | undefined;
  return loaded?.accountId === accountId ? loaded.accountRow : undefined;
}

/**
 * Loads the facts of one authorization request once, however many checks ask: the provider runs
 * the checks of a prompt concurrently. Keyed by the request's context, so nothing is shared.
 */
export function factsLoader(stores: {
  accounts: AccountStore;
  clients: ClientStore;
  mfa: MfaStore;
  access: AccessService;
  clock: Clock;
  rollout: RolloutDates;
}): (ctx: KoaContextWithOIDC) => Promise<Facts> {
  const cache = new WeakMap<object, Promise<Facts>>();
  return (ctx) => {
    let facts = cache.get(ctx);
    if (!facts) {
      const accountId = ctx.oidc.session?.accountId;
      const clientId = ctx.oidc.client?.clientId;
      facts = (async () => {
        const [account, client, factors] = await Promise.all([
          accountId ? (loadedBefore(ctx, accountId) ?? stores.accounts.findById(accountId)) : undefined,
          clientId ? stores.clients.find(clientId) : undefined,
          accountId ? stores.mfa.factors(accountId) : [],
        ]);
        // Rules are read from the database at every authorization: a change applies at once, on every node.
        const access = account && client ? await stores.access.decide(account, client) : undefined;
        const now = stores.clock.now();
        const mfaRollout = rolloutPhase(now, stores.rollout, { warningFrom: client?.mfa_warning_from, requiredFrom: client?.mfa_required_from });
        return { account, client, factors, access, mfaRollout, now };
      })();
      cache.set(ctx, facts);
    }
    return facts;
  };
}
