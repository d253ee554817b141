import { mfaFresh } from '../../mfa/assurance.ts';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Facts, Step, StepHandler, StepRequest } from '../step.ts';
import type { StepDeps } from './deps.ts';
import { finishWithFactor, mfaDemandedHere, methodHost, phishingResistantDemanded } from './mfa-common.ts';
import { isPhishingResistant } from '../../mfa/mfa.service.ts';
import { FactorChallenge } from '../methods/factor-challenge.ts';
import { factorMethods } from '../methods/factor-methods.ts';
import { startIdentityVerification } from './login.ts';

/**
 * Step 2: "Verify your identity", right after the password: the account has a second factor and this
 * session has not shown it, or not recently enough for the client, and either MFA is demanded (by
 * the account, the client or acr_values) or the password is to be changed. Through SSO too: a
 * password-only session reaching an MFA client is stopped here, and prompt=none gets
 * interaction_required. `passwordChangeDue` is the password_change step's own test (policy.ts).
 */
export function mfaVerifyStep(deps: StepDeps, later: { passwordChangeDue: (facts: Facts, ctx: KoaContextWithOIDC) => boolean }): Step {
  const challenge = new FactorChallenge(deps, factorMethods(deps));
  const host = (request: StepRequest) => methodHost(request, `signin:${request.uid}`);

  /**
   * The account has a factor that this session has not shown recently enough for the client; when
   * the request demands a security key or passkey and the account has one, that kind of factor.
   */
  const factorMissing = (facts: Facts, ctx: KoaContextWithOIDC) => {
    const keyOnly = phishingResistantDemanded(ctx) && facts.factors.some(isPhishingResistant);
    const session = { amr: ctx.oidc.session?.amr, loginTs: ctx.oidc.session?.loginTs };
    return facts.factors.length > 0 && !mfaFresh(session, facts.client?.mfa_max_age ?? null, Math.floor(facts.now.getTime() / 1000), keyOnly);
  };

  async function page(request: StepRequest, error: string | null, status = 200) {
    const data = await challenge.page(host(request), error);
    request.render(
      'mfa-challenge',
      'mfa.verify_title',
      { ...data, lead: request.t('mfa.verify_lead', { client: await request.clientName() }), cantUseUrl: `${request.url()}?help=1`, abortAction: request.url('abort') },
      status,
    );
  }

  /** "I can't use any of these": what else there is (identity verification, the office), and the way back. */
  function cantUsePage(request: StepRequest) {
    request.render('mfa-cant-use', 'mfa.cant_use_title', { idvAction: deps.idv ? request.url('idv') : null, backUrl: request.url() });
  }

  const act =
    (name: string): StepHandler =>
    async (request) => {
      const result = await challenge.act(name, host(request));
      if (result.ok) return finishWithFactor(request, 'mfa_verify', result.proven.amr);
      await page(request, result.error, result.status);
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
    show: (request) => (request.ctx.query.help === '1' ? Promise.resolve(cantUsePage(request)) : page(request, null)),
    actions: { ...Object.fromEntries(challenge.actionNames.map((name) => [name, act(name)])), idv: startIdentityVerification(deps) },
  };
}
