import { mfaFresh } from '../../mfa/assurance.ts';
import type { CheckContext, Facts, Step, StepRequest } from '../step.ts';
import type { StepDeps } from './deps.ts';
import { finishWithFactor, mfaDemandedHere, phishingResistantDemanded } from './mfa-common.ts';
import { factorChallengePages, type FactorSubject } from './factor-pages.ts';
import { isPhishingResistant } from '../../mfa/mfa.service.ts';
import { startIdentityVerification } from './login.ts';

/**
 * Step 2: "Verify your identity", right after the password: the account has a second factor and this
 * session has not shown it, or not recently enough for the client, and either MFA is demanded (by
 * the account, the client or acr_values) or the password is to be changed. Through SSO too: a
 * password-only session reaching an MFA client is stopped here, and prompt=none gets
 * interaction_required. `passwordChangeDue` is the password_change step's own test (policy.ts).
 */
export function mfaVerifyStep(deps: StepDeps, later: { passwordChangeDue: (facts: Facts, ctx: CheckContext) => boolean }): Step {
  const challenge = factorChallengePages(deps);
  // The session's account, signed in again with the factor added.
  const subject = (request: StepRequest): FactorSubject => ({
    accountId: request.details.session!.accountId,
    finish: (amr) => finishWithFactor(request, 'mfa_verify', amr),
  });

  /**
   * The account has a factor that this session has not shown recently enough for the client; when
   * the request demands a security key or passkey and the account has one, that kind of factor.
   */
  const factorMissing = (facts: Facts, ctx: CheckContext) => {
    const keyOnly = phishingResistantDemanded(ctx) && facts.factors.some(isPhishingResistant);
    const session = { amr: ctx.oidc.session?.amr, loginTs: ctx.oidc.session?.loginTs };
    return facts.factors.length > 0 && !mfaFresh(session, facts.client?.mfa_max_age ?? null, Math.floor(facts.now.getTime() / 1000), keyOnly);
  };

  return {
    name: 'mfa_verify',
    checks: [
      {
        reason: 'mfa_required',
        description: 'the session has not shown a second factor recently enough',
        test: (facts, ctx) => factorMissing(facts, ctx) && mfaDemandedHere(facts, ctx),
      },
      {
        // A password from a letter or a help desk proves the paper, not the person: with a factor
        // on the account, the factor comes before that password may be replaced.
        reason: 'mfa_before_password_change',
        description: 'the password is to be changed and the account has a second factor that this session has not shown',
        test: (facts, ctx) => factorMissing(facts, ctx) && later.passwordChangeDue(facts, ctx),
      },
    ],
    show: (request) => challenge.show(request, subject(request)),
    actions: { ...Object.fromEntries(challenge.actionNames.map((name) => [name, (request: StepRequest) => challenge.act(name, request, subject(request))])), idv: startIdentityVerification(deps) },
  };
}
