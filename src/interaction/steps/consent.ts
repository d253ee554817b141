import type { MessageKey } from '../../i18n/en.ts';
import type { Step } from '../step.ts';
import type { StepDeps } from './deps.ts';

const SCOPE_TEXT: Record<string, MessageKey> = {
  openid: 'scope.openid',
  profile: 'scope.profile',
  email: 'scope.email',
  eduperson: 'scope.eduperson',
  offline_access: 'scope.offline_access',
};

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
      const missing = (request.details.prompt.details.missingOIDCScope as string[] | undefined) ?? [];
      const account = request.details.session ? await deps.accounts.findById(request.details.session.accountId) : undefined;
      request.render('consent', 'consent.title', {
        clientName: request.clientName,
        action: request.url('decide'),
        scopes: [...new Set(missing.map((s) => SCOPE_TEXT[s]).filter(Boolean))].map((key) => request.t(key)),
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
        const prompt = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
        if (prompt.missingOIDCScope) grant.addOIDCScope(prompt.missingOIDCScope.join(' '));
        if (prompt.missingOIDCClaims) grant.addOIDCClaims(prompt.missingOIDCClaims);
        for (const [indicator, scopes] of Object.entries(prompt.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
        const grantId = await grant.save();
        await request.finish({ consent: { grantId } }, true);
      },
    },
  };
}
