import type { KoaContextWithOIDC } from 'oidc-provider';
import { acrFor, mfaDemanded, withMethod } from '../../mfa/assurance.ts';
import type { VerifyOutcome } from '../../mfa/mfa.service.ts';
import type { SendOutcome } from '../../mfa/code-sender.ts';
import type { Facts, StepRequest } from '../step.ts';

/** The acr values the request asks for: acr_values, and an essential acr in the claims parameter. */
function requestedAcr(ctx: KoaContextWithOIDC): string[] {
  const fromParam = typeof ctx.oidc.params?.acr_values === 'string' ? ctx.oidc.params.acr_values.split(' ') : [];
  const claim = (ctx.oidc.claims as { id_token?: { acr?: { essential?: boolean; value?: unknown; values?: unknown } } } | undefined)?.id_token?.acr;
  const essential = claim?.essential ? [claim.value, ...(Array.isArray(claim.values) ? claim.values : [])].filter((v): v is string => typeof v === 'string') : [];
  return [...fromParam, ...essential];
}

/** Whether this sign-in needs a second factor: the account, the client or the request asks. */
export function mfaDemandedHere(facts: Facts, ctx: KoaContextWithOIDC): boolean {
  const acrValues = requestedAcr(ctx);
  return (
    facts.account !== undefined &&
    mfaDemanded({
      accountRequires: facts.account.mfa_required,
      clientRequires: (facts.client?.require_mfa ?? false) || facts.mfaRollout.phase === 'required',
      requestedAcr: acrValues,
    })
  );
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

/** The page's answer to a code that could not be sent. */
export function sendRefusal(request: StepRequest, outcome: Exclude<SendOutcome, { ok: true }>): { error: string; status: number } {
  if (outcome.reason === 'rate_limited') {
    request.ctx.set('Retry-After', String(outcome.waitSeconds));
    return { error: request.t('mfa.phone_rate_limited', { minutes: Math.max(1, Math.ceil(outcome.waitSeconds / 60)) }), status: 429 };
  }
  return { error: request.t('mfa.phone_delivery_failed'), status: 503 };
}

/** The words of an SMS or a voice call carrying a code. */
export function codeMessage(request: StepRequest, service: string) {
  return (code: string) => request.t('mfa.phone_text', { code: code.split('').join(' '), service });
}

/** Options for the browser, as inert JSON inside a <script type="application/json"> element. */
export function embedJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

/** The page's answer to a refused code: message and status. */
export function refusal(request: StepRequest, outcome: Exclude<VerifyOutcome, { ok: true }>): { error: string; status: number } {
  if (outcome.reason === 'locked') {
    if (!outcome.blocked) request.ctx.set('Retry-After', String(outcome.waitSeconds));
    return outcome.blocked ? { error: request.t('mfa.blocked'), status: 429 } : { error: request.t('mfa.locked', { minutes: Math.ceil(outcome.waitSeconds / 60) }), status: 429 };
  }
  const keys = { replayed: 'mfa.replayed', webauthn_failed: 'mfa.webauthn_failed', expired: 'mfa.code_expired', wrong_code: 'mfa.wrong_code' } as const;
  const key = keys[outcome.reason];
  return { error: request.t(key), status: 400 };
}
