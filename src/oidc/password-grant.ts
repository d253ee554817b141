import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import type { PasswordSignin, SigninMethod } from '../account/password-signin.ts';
import { parseIdentifier } from '../account/common-id.ts';
import { OverloadedError } from '../shared/errors.ts';
import type { ClientStore } from '../client/client.store.ts';
import type { AccessService } from '../access/access.service.ts';
import { AMR_APP_PASSWORD } from '../mfa/assurance.ts';
import { CLAIM_SCOPES } from './claims.ts';
import { logIgnoredScopes } from './ignored-scopes.ts';

export const PASSWORD_GRANT_PARAMETERS = ['username', 'password', 'scope'];

/** What a grant's sign-in showed, as the amr its token carries and the access rules judge. */
const amrOf = (method: SigninMethod) => (method === 'app_password' ? [AMR_APP_PASSWORD] : ['pwd']);

/**
 * The OAuth password grant (RFC 6749 section 4.3) for clients flagged --legacy-password only
 * (oidc-provider refuses it to clients whose grant_types lack it): back-ends such as mail or
 * Wi-Fi servers that cannot send people through a browser, and that take a token as the decision.
 * The same limits and sign-in log as the sign-in form apply, and the client's access rules decide
 * as on every other path (an MFA demand is met only by an app password); the token carries its amr
 * so that each later use is judged the same way.
 */
export function passwordGrant(signin: PasswordSignin, clients: ClientStore, access: AccessService, realmSuffix: string | undefined) {
  return async (ctx: KoaContextWithOIDC) => {
    const { params, client, provider } = ctx.oidc;
    const commonId = parseIdentifier(String(params?.username ?? ''), realmSuffix);
    if (!commonId || typeof params?.password !== 'string') throw new errors.InvalidGrant('invalid credentials');
    let outcome;
    try {
      const rules = await clients.find(client!.clientId);
      // Authenticated a moment ago, so only a deletion in between can lose the row.
      if (!rules) throw new errors.InvalidClient('client not found');
      outcome = await signin.signIn({
        commonId,
        password: params.password,
        ip: ctx.ip,
        userAgent: ctx.get('user-agent') || null,
        clientId: client!.clientId,
        passwordGrant: { admit: (account, method) => access.decide(account, rules, { amr: amrOf(method) }) },
      });
    } catch (error) {
      if (!(error instanceof OverloadedError)) throw error;
      ctx.status = 503;
      ctx.set('Retry-After', String(error.retryAfterSeconds));
      ctx.body = { error: 'temporarily_unavailable', error_description: 'the server is busy; try again shortly' };
      return;
    }
    // One answer for every refusal, access rules included: the caller learns nothing about the
    // account (the sign-in log keeps the reason).
    if (!outcome.ok) throw new errors.InvalidGrant('invalid credentials');
    // The scopes of claims.ts; others are ignored as at the authorization endpoint (no refresh
    // token here, so no offline_access either).
    const requested = String(params.scope ?? 'openid').split(' ');
    logIgnoredScopes(
      ctx.state?.log,
      client!.clientId,
      requested.filter((s) => s && !CLAIM_SCOPES.has(s)),
    );
    const scope = [...new Set(requested.filter((s) => CLAIM_SCOPES.has(s)))].join(' ') || 'openid';
    const grant = new provider.Grant({ accountId: outcome.account.id, clientId: client!.clientId });
    grant.addOIDCScope(scope);
    const grantId = await grant.save();
    const token = new provider.AccessToken({ accountId: outcome.account.id, client: client!, grantId, gty: 'password', scope, extra: { amr: amrOf(outcome.method) } });
    ctx.oidc.entity('AccessToken', token);
    const accessToken = await token.save();
    ctx.body = { access_token: accessToken, expires_in: token.expiration, token_type: 'Bearer', scope };
  };
}
