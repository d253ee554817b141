import QRCode from 'qrcode';
import { totpUri } from '../../mfa/totp.ts';
import type { Step, StepRequest } from '../step.ts';
import type { VerifyOutcome } from '../../mfa/mfa.service.ts';
import type { StepDeps } from './deps.ts';
import { embedJson, finishWithFactor, mfaDemandedHere, refusal } from './mfa-common.ts';

/**
 * Step 3: "More information required". MFA is demanded and the account has no second factor, so
 * the person sets one up now. The new secret lives, encrypted, in the interaction's server-side
 * state until one valid code confirms it: leaving halfway stores no factor.
 */
export function mfaEnrollmentStep(deps: StepDeps): Step {
  async function page(request: StepRequest, error: string | null, status = 200) {
    const state = await request.state();
    let sealed = typeof state.pendingTotp === 'string' ? state.pendingTotp : undefined;
    if (!sealed) {
      sealed = deps.mfa.pendingTotp().sealed;
      await request.saveState({ pendingTotp: sealed });
    }
    const secret = deps.mfa.unseal(sealed);
    const account = (await deps.accounts.findById(request.details.session!.accountId))!;
    const uri = totpUri(secret, account.common_id, deps.config.issuerName);
    const options = await deps.mfa.webauthnRegistrationOptions(account);
    await request.saveState({ webauthnChallenge: options.challenge });
    const svg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
    request.render('mfa-enroll', 'mfa.enroll_title', {
      action: request.url('totp'),
      abortAction: request.url('abort'),
      qr: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`,
      secret: secret.match(/.{1,4}/g)!.join(' '),
      webauthn: { options: embedJson(options), action: request.url('webauthn'), mode: 'create', label: request.t('mfa.webauthn_register') },
      error,
    }, status);
  }

  async function enrolled(request: StepRequest, outcome: Extract<VerifyOutcome, { ok: true }>) {
    await request.saveState({ pendingTotp: null, webauthnChallenge: null });
    await deps.audit.record({ actor: 'self', action: 'mfa.enrolled', accountId: outcome.factor.account_id, details: { kind: outcome.factor.kind, label: outcome.factor.label } });
    await finishWithFactor(request, 'mfa_enrollment', outcome.amr);
  }

  return {
    name: 'mfa_enrollment',
    checks: [{
      reason: 'mfa_enrollment_required',
      description: 'a second factor is required and the account has none',
      test: (facts, ctx) => facts.factors.length === 0 && mfaDemandedHere(facts, ctx),
    }],
    show: (request) => page(request, null),
    actions: {
      async totp(request) {
        const state = await request.state();
        if (typeof state.pendingTotp !== 'string') return request.reload();
        const outcome = await deps.mfa.confirmTotp(request.details.session!.accountId, state.pendingTotp, request.body.code, request.t('mfa.totp_label'));
        if (!outcome.ok) {
          const { error, status } = refusal(request, outcome);
          return page(request, error, status);
        }
        await enrolled(request, outcome);
      },
      async webauthn(request) {
        const state = await request.state();
        if (typeof state.webauthnChallenge !== 'string') return request.reload();
        const outcome = await deps.mfa.confirmWebauthn(request.details.session!.accountId, request.body.credential, state.webauthnChallenge, request.t('mfa.webauthn_title'));
        if (!outcome.ok) {
          const { error, status } = refusal(request, outcome);
          return page(request, error, status);
        }
        await enrolled(request, outcome);
      },
    },
  };
}
