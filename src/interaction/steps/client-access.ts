import type { Step } from '../step.ts';
import type { StepDeps } from './deps.ts';

/**
 * Step 1: may this account use this client at all? Today: only active accounts may. Per-client
 * rules (affiliation, allow and deny lists, error 53003) join this step as further checks.
 */
export function clientAccessStep(deps: StepDeps): Step {
  return {
    name: 'client_access',
    checks: [{
      reason: 'account_inactive',
      description: 'the account is suspended or revoked',
      error: 'access_denied',
      test: (facts) => facts.account !== undefined && facts.account.status !== 'active',
    }],
    async show(request) {
      const accountId = request.details.session?.accountId;
      const account = accountId ? await deps.accounts.findById(accountId) : undefined;
      const reason = account?.status === 'suspended' ? 'account_suspended' : 'account_revoked';
      await deps.signinLog.record({
        accountId: account?.id ?? null,
        clientId: String(request.details.params.client_id),
        ip: request.ctx.ip,
        userAgent: request.ctx.get('user-agent') || null,
        result: 'failure',
        reason,
      });
      request.render('inactive', 'inactive.title', {
        clientName: request.clientName,
        message: request.t(reason === 'account_suspended' ? 'inactive.suspended' : 'inactive.revoked'),
        abortAction: request.url('abort'),
      }, 403);
    },
    actions: {},
  };
}
