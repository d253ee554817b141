import type { InteractionResults } from 'oidc-provider';
import { ACR_PHISHING_RESISTANT, acrFor, mfaDemanded, withMethod } from '../../mfa/assurance.ts';
import type { MethodHost } from '../methods/method.ts';
import type { CheckContext, Facts, StepRequest } from '../step.ts';

/** The acr values an authorization request asks for: acr_values, and an essential acr in the claims parameter. */
function requestedAcrOf(params: Record<string, unknown> | undefined, claims: unknown): string[] {
  const fromParam = typeof params?.acr_values === 'string' ? params.acr_values.split(' ') : [];
  const claim = (claims as { id_token?: { acr?: { essential?: boolean; value?: unknown; values?: unknown } } } | undefined)?.id_token?.acr;
  const essential = claim?.essential ? [claim.value, ...(Array.isArray(claim.values) ? claim.values : [])].filter((v): v is string => typeof v === 'string') : [];
  return [...fromParam, ...essential];
}

const requestedAcr = (ctx: CheckContext) => requestedAcrOf(ctx.oidc.params, ctx.oidc.claims);

/** An interaction's claims parameter, as the provider validated it (JSON), parsed. */
export function claimsParameterOf(params: Record<string, unknown>): unknown {
  try {
    return typeof params.claims === 'string' ? JSON.parse(params.claims) : undefined;
  } catch {
    return undefined;
  }
}

/** The same, from an interaction's details. */
const interactionAcr = (request: StepRequest): string[] => requestedAcrOf(request.details.params, claimsParameterOf(request.details.params));

/** Whether this sign-in needs a second factor: the account, the client or the request asks. */
export function mfaDemandedHere(facts: Facts, ctx: CheckContext): boolean {
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

/** A second factor is demanded here and the account has none: the first is to be set up. */
export function firstFactorDue(facts: Facts, ctx: CheckContext): boolean {
  return facts.factors.length === 0 && mfaDemandedHere(facts, ctx);
}

/** Whether this sign-in asks for a security key or passkey in particular. */
export function phishingResistantDemanded(ctx: CheckContext): boolean {
  return requestedAcr(ctx).includes(ACR_PHISHING_RESISTANT);
}

/** A sign-in a factor is added to: its result's login (the account and the methods shown so far). */
export type SignedIn = InteractionResults & { login: { accountId: string; amr?: string[]; remember?: boolean } };

/**
 * Completes an MFA step by signing in again with the factor added to the amr, so the ID token
 * carries what was really shown and auth_time says when (for --mfa-max-age). What it adds to is
 * the session's sign-in (merged into the interaction's result), or `password`: a password's result
 * of this same interaction, which has made no session yet (login.ts).
 */
export function finishWithFactor(request: StepRequest, step: string, amr: string, password?: SignedIn): Promise<void> {
  const session = request.details.session!;
  const before: SignedIn = password ?? { login: { accountId: session.accountId, amr: session.amr, remember: true } };
  const methods = withMethod(before.login.amr, amr);
  return request.finish({ ...before, [step]: {}, login: { ...before.login, amr: methods, acr: acrFor(methods) } }, password === undefined);
}

/** A sign-in step as the place a method runs for `accountId` (the session's): the interaction's state, its forms, its codes bound to `flow`. */
export function methodHost(request: StepRequest, flow: string, accountId = request.details.session!.accountId): MethodHost {
  return {
    ctx: request.ctx,
    accountId,
    flow,
    body: request.body,
    t: request.t,
    state: request.state,
    saveState: request.saveState,
    url: request.url,
    phishingResistantOnly: interactionAcr(request).includes(ACR_PHISHING_RESISTANT),
  };
}
