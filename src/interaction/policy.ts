import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import { checkFires, stepDue, type Facts, type Step } from './step.ts';
import type { StepDeps } from './steps/deps.ts';
import { loginStep, selectAccountStep } from './steps/login.ts';
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
  return [
    selectAccountStep(deps),
    loginStep(deps),
    clientAccessStep(deps),
    mfaVerifyStep(deps, { passwordChangeDue: (facts, ctx) => stepDue(passwordChange, facts, ctx) }),
    passwordExpiryNoticeStep(deps),
    passwordChange,
    mfaNoticeStep(deps),
    mfaEnrollmentStep(deps),
    securityEducationStep(deps),
    consentStep(deps),
  ];
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
