import { requestLog } from './error-log.ts';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from 'pino';

/** Scope values are the relying party's choice: a few, kept short, are enough to recognise a mistake. */
const MAX_LOGGED = 10;
const MAX_LENGTH = 64;

/**
 * OIDC Core 3.1.2.1 says scopes the OP does not understand are ignored, and the provider does so:
 * the grant and the tokens simply lack them. The relying party is not told, so the operator is:
 * one line per request at info, with the client, since "my system asked for `groups` and got
 * nothing" is a support question whose answer is this line.
 */
export function logIgnoredScopes(log: Logger | undefined, clientId: string | undefined, ignored: readonly string[]): void {
  if (!log || ignored.length === 0) return;
  log.info({ clientId, scopes: ignored.slice(0, MAX_LOGGED).map((scope) => scope.slice(0, MAX_LENGTH)) }, 'requested scopes ignored');
}

/** The endpoints that take a scope for a person's authorization. */
const AUTHORIZATION_ROUTES = new Set(['authorization', 'pushed_authorization_request', 'device_authorization']);

/**
 * Provider middleware that logs the scopes an authorization request asked for that are neither
 * OIDC scopes of this provider nor scopes of a resource server it names (RFC 8707). The provider
 * drops them from the request's parameters before anything else sees them (and before the
 * interaction keeps them), so the scope parameter is read as it came, and judged once the
 * provider has resolved the client and the resource servers.
 */
export function logIgnoredAuthorizationScopes(logger: Logger) {
  return async (ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> => {
    const body = ctx.request.body as Record<string, unknown> | undefined;
    const raw = ctx.method === 'POST' ? body?.scope : ctx.query.scope;
    await next();
    const oidc = ctx.oidc as KoaContextWithOIDC['oidc'] | undefined;
    if (typeof raw !== 'string' || !oidc?.client || !AUTHORIZATION_ROUTES.has(oidc.route)) return;
    const known = new Set(oidc.requestParamOIDCScopes);
    for (const server of Object.values(oidc.resourceServers ?? {})) for (const scope of server.scope?.split(' ') ?? []) known.add(scope);
    const ignored = [...new Set(raw.split(' '))].filter((scope) => scope && !known.has(scope));
    logIgnoredScopes(requestLog(ctx, logger), oidc.client.clientId, ignored);
  };
}
