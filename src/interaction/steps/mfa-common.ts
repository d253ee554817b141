import type { KoaContextWithOIDC } from 'oidc-provider';
import { acrFor, mfaDemanded, withMethod } from '../../mfa/assurance.ts';
import type { VerifyOutcome } from '../../mfa/mfa.service.ts';
import type { Facts, StepRequest } from '../step.ts';

/** Whether this sign-in needs a second factor: the account, the client or the request asks. */
export function mfaDemandedHere(facts: Facts, ctx: KoaContextWithOIDC): boolean {
  const requested = ctx.oidc.params?.acr_values;
  const acrValues = typeof requested === 'string' ? requested.split(' ') : [];
  return facts.account !== undefined && mfaDemanded({
    accountRequires: facts.account.mfa_required,
    clientRequires: facts.client?.require_mfa ?? false,
    requestedAcr: acrValues,
  });
}

/**
 * Completes an MFA step by signing the session in again with the factor added to its amr, so the
 * ID token carries what was really shown and auth_time says when (for --mfa-max-age).
 */
export function finishWithFactor(request: StepRequest, step: string, amr: string): Promise<void> {
  const session = request.details.session!;
  const methods = withMethod(session.amr, amr);
  return request.finish({ [step]: {}, login: { accountId: session.accountId, amr: methods, acr: acrFor(methods), remember: true } }, true);
}

/** Options for the browser, as inert JSON inside a <script type="application/json"> element. */
export function embedJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

/** The page's answer to a refused code: message and status. */
export function refusal(request: StepRequest, outcome: Exclude<VerifyOutcome, { ok: true }>): { error: string; status: number } {
  if (outcome.reason === 'locked') {
    if (!outcome.blocked) request.ctx.set('Retry-After', String(outcome.waitSeconds));
    return outcome.blocked
      ? { error: request.t('mfa.blocked'), status: 429 }
      : { error: request.t('mfa.locked', { minutes: Math.ceil(outcome.waitSeconds / 60) }), status: 429 };
  }
  const key = outcome.reason === 'replayed' ? 'mfa.replayed' : outcome.reason === 'webauthn_failed' ? 'mfa.webauthn_failed' : 'mfa.wrong_code';
  return { error: request.t(key), status: 400 };
}
