import { memoised } from '../shared/request-memo.ts';
import { errors, type AccessToken, type Client, type ClientCredentials, type FindAccount, type KoaContextWithOIDC, type RefreshToken, type ResourceServer } from 'oidc-provider';
import type { AccessService } from '../access/access.service.ts';
import type { AccountRow, AccountStore } from '../account/account.store.ts';
import type { ClientStore } from '../client/client.store.ts';
import { signInMethods } from './token-sign-in.ts';

interface ResourceServerDeps {
  clients: ClientStore;
  accounts: AccountStore;
  access: AccessService;
}

type Token = AccessToken | ClientCredentials | RefreshToken;

const audiences = (aud: string | string[] | undefined) => (aud === undefined ? [] : Array.isArray(aud) ? aud : [aud]);

/**
 * APIs (resource servers, RFC 8707): clients registered with a resource indicator. A relying party
 * registered for an API (its --resource) asks for a token for it with `resource=URI`; the token's
 * audience is the indicator, and the API checks it by introspection. Tokens stay opaque: a token is
 * active only while both the client that got it and the API admit the account, which a
 * self-contained JWT could not follow (a suspension or a rule change ends it at once, on every node).
 */
export function resourceServers(deps: ResourceServerDeps) {
  // The policy and the answer's username read the same account in one introspection, which writes none:
  // the row the token gate (findAccount) read, when it has one to give.
  const accountOf = (id: string, read?: AccountRow) => memoised(`introspection:account:${id}`, async () => read ?? deps.accounts.findById(id));

  return {
    /** features.resourceIndicators.getResourceServerInfo: only registered APIs, only for the clients registered for them. */
    async info(_ctx: KoaContextWithOIDC, indicator: string, client: Client): Promise<ResourceServer> {
      const canonical = URL.parse(indicator)?.href;
      const registered = canonical ? (await deps.clients.find(client.clientId))?.resources.includes(canonical) : false;
      // One answer for an unknown API and one this client may not call: which APIs exist is nobody's business.
      if (!canonical || !registered || !(await deps.clients.findByResource(canonical))) throw new errors.InvalidTarget();
      // No scopes of its own: the token says who (introspection), the API decides what.
      return { scope: '', audience: canonical, accessTokenFormat: 'opaque' };
    },

    /**
     * features.introspection.allowedPolicy: a client learns about its own tokens, and an API about
     * the tokens issued for it (their audience), nothing else. A token with an account is active only
     * while the client it was issued to admits the account (`tokenGate`: the provider's findAccount,
     * the one gate userinfo and refresh pass too) and, for an API, while the API's own access rules
     * admit it with the sign-in the token stands on.
     */
    async mayIntrospect(ctx: KoaContextWithOIDC, caller: Client, token: Token, tokenGate: FindAccount): Promise<boolean> {
      const own = token.clientId === caller.clientId;
      const api = own ? undefined : await deps.clients.find(caller.clientId);
      const aud = 'aud' in token ? token.aud : undefined;
      if (!own && !(api?.resource_server && audiences(aud).includes(api.resource_server))) return false;
      if (!('accountId' in token) || !token.accountId) return true;
      const admitted = await tokenGate(ctx, token.accountId, token);
      if (admitted === undefined) return false;
      const account = await accountOf(token.accountId, (admitted as { accountRow?: AccountRow }).accountRow);
      if (!api) return true;
      return account !== undefined && (await deps.access.decide(account, api, { amr: signInMethods(token) })).allowed;
    },

    /**
     * Adds `username` (the Common ID, RFC 7662) to an active introspection answer: for the API a
     * token was issued for, and for the token's own client when its grant has the profile scope (it
     * gets the Common ID as preferred_username there anyway; without that scope it learns nothing more).
     */
    async introspectionUsername(ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> {
      await next();
      if (ctx.oidc?.route !== 'introspection') return;
      const body = ctx.body as Record<string, unknown> | undefined;
      const token = ctx.oidc.entities.AccessToken ?? ctx.oidc.entities.RefreshToken;
      if (body?.active !== true || !token?.accountId) return;
      if (token.clientId === ctx.oidc.client?.clientId && !ctx.oidc.entities.Grant?.getOIDCScope().split(' ').includes('profile')) return;
      const account = await accountOf(token.accountId);
      if (account) body.username = account.common_id;
    },
  };
}

export type ResourceServers = ReturnType<typeof resourceServers>;
