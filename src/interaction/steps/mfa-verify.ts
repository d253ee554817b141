import { mfaFresh } from '../../mfa/assurance.ts';
import type { Step, StepRequest } from '../step.ts';
import type { StepDeps } from './deps.ts';
import { finishWithFactor, mfaDemandedHere, refusal } from './mfa-common.ts';

/**
 * Step 4: "Verify your identity". MFA is demanded (by the account, the client or acr_values) and
 * this session has not shown a second factor, or not recently enough for the client. Through SSO
 * too: a password-only session reaching an MFA client is stopped here, and prompt=none gets
 * interaction_required.
 */
export function mfaVerifyStep(deps: StepDeps): Step {
  const page = (request: StepRequest, error: string | null, status = 200) =>
    request.render('mfa-verify', 'mfa.verify_title', { action: request.url('totp'), abortAction: request.url('abort'), clientName: request.clientName, error }, status);

  return {
    name: 'mfa_verify',
    checks: [{
      reason: 'mfa_required',
      description: 'the session has not shown a second factor recently enough',
      test: (facts, ctx) => facts.factors.length > 0 && mfaDemandedHere(facts, ctx)
        && !mfaFresh({ amr: ctx.oidc.session?.amr, loginTs: ctx.oidc.session?.loginTs }, facts.client?.mfa_max_age ?? null, Math.floor(Date.now() / 1000)),
    }],
    show: async (request) => page(request, null),
    actions: {
      async totp(request) {
        const outcome = await deps.mfa.verifyTotp(request.details.session!.accountId, request.body.code);
        if (!outcome.ok) {
          const { error, status } = refusal(request, outcome);
          return page(request, error, status);
        }
        await finishWithFactor(request, 'mfa_verify', outcome.amr);
      },
    },
  };
}
