import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import type { Facts, Step } from './step.ts';
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
 * prompt=none the relying party gets that check's error instead. Later features add their steps
 * here without touching the others.
 */
export function buildSteps(deps: StepDeps): Step[] {
  return [
    selectAccountStep(deps),
    loginStep(deps),
    clientAccessStep(deps),
    passwordExpiryNoticeStep(deps),
    passwordChangeStep(deps),
    mfaNoticeStep(deps),
    mfaEnrollmentStep(deps),
    mfaVerifyStep(deps),
    securityEducationStep(deps),
    consentStep(deps),
  ];
}

export function buildPolicy(steps: Step[], loadFacts: (ctx: KoaContextWithOIDC) => Promise<Facts>) {
  const builtIn = base();
  return steps.map((step) => {
    const checks = step.checks.map(
      (c) =>
        new Check(c.reason, c.description, c.error ?? 'interaction_required', async (ctx: KoaContextWithOIDC) => {
          const facts = await loadFacts(ctx);
          return !(step.skipForRevoked && facts.account?.status === 'revoked') && c.test(facts, ctx);
        }),
    );
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
