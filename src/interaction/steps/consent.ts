import type { MessageKey } from '../../i18n/en.ts';
import type { InteractionDetails, Step } from '../step.ts';
import type { StepDeps } from './deps.ts';

/** The page's text for each scope, in the order the page lists them. */
export const SCOPE_TEXT: Record<string, MessageKey> = {
  openid: 'scope.openid',
  profile: 'scope.profile',
  email: 'scope.email',
  eduperson: 'scope.eduperson',
  offline_access: 'scope.offline_access',
};

interface ConsentDetails {
  missingOIDCScope?: string[];
  missingOIDCClaims?: string[];
  missingResourceScopes?: Record<string, string[]>;
}

/**
 * What the person is asked for, the one source of both the page and the grant so that Allow grants
 * exactly what the page shows: the missing scopes, and each claim asked for by itself in the claims
 * parameter, shown as the text of the scope that covers it (a relying party asking scope=openid with
 * claims={"userinfo":{"email":null}} gets the email line). A scope or claim the page has no text for
 * is withheld: rejected in the grant, so the provider neither releases it nor asks again.
 */
function asked(details: InteractionDetails, scopeOfClaim: StepDeps['scopeOfClaim']) {
  const prompt = details.prompt.details as ConsentDetails;
  const shown = (scope: string | undefined) => scope !== undefined && scope in SCOPE_TEXT;
  const missingScopes = prompt.missingOIDCScope ?? [];
  const missingClaims = prompt.missingOIDCClaims ?? [];
  const scopes = missingScopes.filter(shown);
  const claims = missingClaims.filter((claim) => shown(scopeOfClaim(claim)));
  const listed = new Set([...scopes, ...claims.map(scopeOfClaim)]);
  return {
    scopes,
    claims,
    withheldScopes: missingScopes.filter((scope) => !scopes.includes(scope)),
    withheldClaims: missingClaims.filter((claim) => !claims.includes(claim)),
    texts: Object.entries(SCOPE_TEXT)
      .filter(([scope]) => listed.has(scope))
      .map(([, key]) => key),
    resourceScopes: prompt.missingResourceScopes ?? {},
  };
}

/**
 * Step 6: oidc-provider's built-in consent prompt, shown only to third-party clients; first-party
 * clients get their grant from loadExistingGrant (src/oidc/grants.ts) and never reach it.
 */
export function consentStep(deps: StepDeps): Step {
  return {
    name: 'consent',
    builtIn: true,
    checks: [],
    async show(request) {
      const account = request.details.session ? await deps.accounts.findById(request.details.session.accountId) : undefined;
      const { texts } = asked(request.details, deps.scopeOfClaim);
      // The APIs the client asks tokens for (ones an operator listed on it): each learns who the
      // person is when it checks a token, so the page names them too.
      const resource = request.details.params.resource;
      const indicators = [...new Set(typeof resource === 'string' ? [resource] : Array.isArray(resource) ? resource.map(String) : [])];
      const apis = await Promise.all(indicators.map(async (indicator) => (await deps.clients.findByResource(indicator))?.name ?? indicator));
      request.render('consent', 'consent.title', {
        clientName: await request.clientName(),
        action: request.url('decide'),
        scopes: [...texts.map((key) => request.t(key)), ...apis.map((api) => request.t('scope.resource', { api }))],
        accountLine: account ? request.t('consent.account', { name: account.name, commonId: account.common_id }) : '',
      });
    },
    actions: {
      async decide(request) {
        if (request.body.decision !== 'approve') {
          return request.finish({ error: 'access_denied', error_description: 'the person did not allow access' });
        }
        const { details, provider } = request;
        const accountId = details.session!.accountId;
        const clientId = String(details.params.client_id);
        const grant = details.grantId ? ((await provider.Grant.find(details.grantId)) ?? new provider.Grant({ accountId, clientId })) : new provider.Grant({ accountId, clientId });
        const { scopes, claims, withheldScopes, withheldClaims, resourceScopes } = asked(details, deps.scopeOfClaim);
        if (scopes.length) grant.addOIDCScope(scopes.join(' '));
        if (claims.length) grant.addOIDCClaims(claims);
        if (withheldScopes.length) grant.rejectOIDCScope(withheldScopes.join(' '));
        if (withheldClaims.length) grant.rejectOIDCClaims(withheldClaims);
        for (const [indicator, scopes] of Object.entries(resourceScopes)) grant.addResourceScope(indicator, scopes.join(' '));
        const grantId = await grant.save();
        await request.finish({ consent: { grantId } }, true);
      },
    },
  };
}
