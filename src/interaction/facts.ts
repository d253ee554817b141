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

/** Where the facts come from. */
export interface FactSources {
  accounts: Pick<AccountStore, 'findById'>;
  clients: Pick<ClientStore, 'find'>;
  mfa: Pick<MfaStore, 'factors'>;
  access: Pick<AccessService, 'decide'>;
  clock: Clock;
  rollout: RolloutDates;
}

/** The facts for an account (or none yet) at a client; `account`: its row, when the caller has it. */
export async function factsFor(sources: FactSources, accountId: string | undefined, clientId: string | undefined, account?: AccountRow): Promise<Facts> {
  const [accountRow, client, factors] = await Promise.all([
    accountId ? (account ?? sources.accounts.findById(accountId)) : undefined,
    clientId ? sources.clients.find(clientId) : undefined,
    accountId ? sources.mfa.factors(accountId) : [],
  ]);
  // Rules are read from the database at every authorization: a change applies at once, on every node.
  const access = accountRow && client ? await sources.access.decide(accountRow, client) : undefined;
  const now = sources.clock.now();
  const mfaRollout = rolloutPhase(now, sources.rollout, { warningFrom: client?.mfa_warning_from, requiredFrom: client?.mfa_required_from });
  return { account: accountRow, client, factors, access, mfaRollout, now };
}

/**
 * Loads the facts of one authorization request once, however many checks ask: the provider runs
 * the checks of a prompt concurrently. Keyed by the request's context, so nothing is shared.
 */
export function factsLoader(sources: FactSources): (ctx: KoaContextWithOIDC) => Promise<Facts> {
  const cache = new WeakMap<object, Promise<Facts>>();
  return (ctx) => {
    let facts = cache.get(ctx);
    if (!facts) {
      const accountId = ctx.oidc.session?.accountId;
      facts = factsFor(sources, accountId, ctx.oidc.client?.clientId, accountId ? loadedBefore(ctx, accountId) : undefined);
      cache.set(ctx, facts);
    }
    return facts;
  };
}
