import { mfaFresh } from '../../mfa/assurance.ts';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Facts, Step, StepRequest } from '../step.ts';
import type { StepDeps } from './deps.ts';
import { codeMessage, embedJson, finishWithFactor, mfaDemandedHere, refusal, sendRefusal } from './mfa-common.ts';
import type { VerifyOutcome } from '../../mfa/mfa.service.ts';

/**
 * Step 2: "Verify your identity", right after the password: the account has a second factor and this
 * session has not shown it, or not recently enough for the client, and either MFA is demanded (by
 * the account, the client or acr_values) or the password is to be changed. Through SSO too: a
 * password-only session reaching an MFA client is stopped here, and prompt=none gets
 * interaction_required. `passwordChangeDue` is the password_change step's own test (policy.ts).
 */
export function mfaVerifyStep(deps: StepDeps, later: { passwordChangeDue: (facts: Facts, ctx: KoaContextWithOIDC) => boolean }): Step {
  /** The account has a factor that this session has not shown recently enough for the client. */
  const factorMissing = (facts: Facts, ctx: KoaContextWithOIDC) =>
    facts.factors.length > 0 && !mfaFresh({ amr: ctx.oidc.session?.amr, loginTs: ctx.oidc.session?.loginTs }, facts.client?.mfa_max_age ?? null, Math.floor(facts.now.getTime() / 1000));

  /** The default method first: a security key or passkey if there is one; codes as "other ways". */
  async function page(request: StepRequest, error: string | null, status = 200) {
    const accountId = request.details.session!.accountId;
    const factors = await deps.mfa.factors(accountId);
    const options = await deps.mfa.webauthnAuthenticationOptions(accountId);
    if (options) await request.saveState({ webauthnChallenge: options.challenge });
    const hasCodes = factors.some((f) => f.kind === 'totp' || f.kind === 'token');
    const state = await request.state();
    const phones = factors.filter((f) => f.kind === 'phone');
    const sentTo = phones.find((f) => f.id === state.phoneFactor);
    // One entry per kind of method, in the order of the account's factors (the default first).
    const methodOf = (kind: string) => (kind === 'webauthn' ? 'webauthn' : kind === 'phone' ? 'phone' : 'code');
    const methods = [...new Set(factors.map((f) => methodOf(f.kind)))];
    request.render(
      'mfa-verify',
      'mfa.verify_title',
      {
        action: hasCodes ? request.url('totp') : null,
        webauthn: options ? { options: embedJson(options), action: request.url('webauthn'), mode: 'get', label: request.t('mfa.webauthn_use') } : null,
        lead: request.t(methods[0] === 'webauthn' ? 'mfa.verify_lead_key' : methods[0] === 'phone' ? 'mfa.verify_lead_phone' : 'mfa.verify_lead', { client: request.clientName }),
        methods,
        phones: phones.map((f) => ({ id: f.id, label: f.label, sendAction: request.url('phone_send') })),
        phoneCode: sentTo ? { label: sentTo.label, action: request.url('phone') } : null,
        abortAction: request.url('abort'),
        clientName: request.clientName,
        error,
      },
      status,
    );
  }

  const verified = (verify: (request: StepRequest, accountId: string) => Promise<VerifyOutcome>) => async (request: StepRequest) => {
    const outcome = await verify(request, request.details.session!.accountId);
    if (!outcome.ok) {
      const { error, status } = refusal(request, outcome);
      return page(request, error, status);
    }
    await finishWithFactor(request, 'mfa_verify', outcome.amr);
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
    show: (request) => page(request, null),
    actions: {
      totp: verified((request, accountId) => deps.mfa.verifyTotp(accountId, request.body.code)),
      async phone_send(request) {
        const accountId = request.details.session!.accountId;
        // The factor id comes from the form, so it must be one of this account's phones.
        const factor = (await deps.mfa.factors(accountId)).find((f) => f.id === request.body.factor && f.kind === 'phone');
        if (!factor) return page(request, request.t('mfa.code_expired'), 400);
        const outcome = await deps.mfa.phone.send(accountId, `signin:${request.uid}:${factor.id}`, deps.mfa.phone.target(factor), codeMessage(request, deps.config.issuerName));
        if (!outcome.ok) {
          const { error, status } = sendRefusal(request, outcome);
          return page(request, error, status);
        }
        await request.saveState({ phoneFactor: factor.id });
        return page(request, null);
      },
      phone: verified(async (request, accountId) => {
        const state = await request.state();
        if (typeof state.phoneFactor !== 'string') return { ok: false, reason: 'expired' };
        return deps.mfa.verifyPhone(accountId, state.phoneFactor, `signin:${request.uid}:${state.phoneFactor}`, request.body.code);
      }),
      webauthn: verified(async (request, accountId) => {
        const state = await request.state();
        if (typeof state.webauthnChallenge !== 'string') return { ok: false, reason: 'webauthn_failed' };
        return deps.mfa.verifyWebauthn(accountId, request.body.credential, state.webauthnChallenge);
      }),
    },
  };
}
