import { interactionPolicy, type InteractionResults, type KoaContextWithOIDC } from 'oidc-provider';
import { checkFires, stepDue, type CheckContext, type Facts, type Step } from './step.ts';
import { factsFor, type FactSources } from './facts.ts';
import { claimsParameterOf } from './steps/mfa-common.ts';
import type { StepDeps } from './steps/deps.ts';
import { loginStep, selectAccountStep, type FactorNext } from './steps/login.ts';
import { clientAccessStep } from './steps/client-access.ts';
import { passwordChangeStep } from './steps/password-change.ts';
import { consentStep } from './steps/consent.ts';
import { mfaEnrollmentStep } from './steps/mfa-enrollment.ts';
import { mfaNoticeStep } from './steps/mfa-notice.ts';
import { passwordExpiryNoticeStep } from './steps/password-expiry-notice.ts';
import { mfaVerifyStep } from './steps/mfa-verify.ts';
import { securityEducationStep } from './steps/security-education.ts';

const { Prompt, Check, base } = interactionPolicy;

/**
 * THE sign-in pipeline, in order. The first step with a check that fires is shown; with
 * prompt=none the relying party gets that check's error instead. The whole list is evaluated
 * again after every step, so a later step never runs before an earlier one that is due. Later
 * features add their steps here without touching the others.
 *
 * Who the person is comes first (password, then the second factor of an account that has one),
 * what the account needs next (a new password, a factor to set up), what the system demands last.
 * So an office-issued, reissued or temporary password (a letter, a help desk, the ID-card
 * recovery) never sets an account's password alone where the account has a second factor:
 * mfa_verify fires for the due password change and comes before it. An account without a factor
 * changes its password, then enrols where MFA is required.
 */
export function buildSteps(deps: StepDeps): Step[] {
  const passwordChange = passwordChangeStep(deps);
  const mfaVerify = mfaVerifyStep(deps, { passwordChangeDue: (facts, ctx) => stepDue(passwordChange, facts, ctx) });
  const sources: FactSources = { accounts: deps.accounts, clients: deps.clients, mfa: deps.mfa, access: deps.access, clock: deps.clock, rollout: deps.config.mfaRollout };
  // Whether the first of the steps after the password that is due once `result` signs the account
  // in is mfa_verify, by the checks the provider will run at the resume (which still decide). Called
  // at sign-in, once `steps` below exists.
  const factorNext: FactorNext = async (request, account, result) => {
    const facts = await factsFor(sources, account.id, String(request.details.params.client_id), account);
    const ctx = foreseen(request.details.params, result, Math.floor(facts.now.getTime() / 1000));
    return steps.slice(steps.indexOf(login) + 1).find((step) => stepDue(step, facts, ctx)) === mfaVerify;
  };
  const login = loginStep(deps, factorNext);
  const steps = [
    selectAccountStep(deps, factorNext),
    login,
    clientAccessStep(deps),
    mfaVerify,
    passwordExpiryNoticeStep(deps),
    passwordChange,
    mfaNoticeStep(deps),
    mfaEnrollmentStep(deps),
    securityEducationStep(deps),
    consentStep(deps),
  ];
  return steps;
}

/** What the checks will see at the resume after `result` (a password's): the request's parameters and a session signed in now. */
function foreseen(params: Record<string, unknown>, result: InteractionResults & { login: { amr: string[] } }, now: number): CheckContext {
  const prompts = new Set(typeof params.prompt === 'string' ? params.prompt.split(' ').filter(Boolean) : []);
  return { oidc: { params, claims: claimsParameterOf(params), prompts, result, session: { amr: result.login.amr, loginTs: now } } };
}

export function buildPolicy(steps: Step[], loadFacts: (ctx: KoaContextWithOIDC) => Promise<Facts>) {
  const builtIn = base();
  return steps.map((step) => {
    const checks = step.checks.map((c) => new Check(c.reason, c.description, c.error ?? 'interaction_required', async (ctx: KoaContextWithOIDC) => checkFires(step, c, await loadFacts(ctx), ctx)));
    if (step.builtIn) {
      const prompt = builtIn.get(step.name);
      if (!prompt) throw new Error(`oidc-provider has no built-in prompt ${step.name}`);
      for (const reason of step.replacesChecks ?? []) prompt.checks.remove(reason);
      for (const check of checks) prompt.checks.add(check);
      return prompt;
    }
    return new Prompt({ name: step.name, requestable: step.requestable ?? false }, ...checks);
  });
}
