import QRCode from 'qrcode';
import { totpUri } from '../../mfa/totp.ts';
import type { Step, StepRequest } from '../step.ts';
import type { VerifyOutcome } from '../../mfa/mfa.service.ts';
import type { StepDeps } from './deps.ts';
import { codeMessage, embedJson, finishWithFactor, mfaDemandedHere, refusal, sendRefusal } from './mfa-common.ts';
import { maskPhone, normalizePhone } from '../../mfa/phone.service.ts';

/**
 * Step 3: "More information required". MFA is demanded and the account has no second factor, so
 * the person sets one up now. The new secret lives, encrypted, in the interaction's server-side
 * state until one valid code confirms it: leaving halfway stores no factor.
 */
export function mfaEnrollmentStep(deps: StepDeps): Step {
  async function page(request: StepRequest, error: string | null, status = 200) {
    const state = await request.state();
    const pendingPhone = typeof state.pendingPhone === 'string' ? deps.mfa.phone.unseal(state.pendingPhone) : undefined;
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
      phone: deps.mfa.phone.available ? {
        sendAction: request.url('phone_send'),
        pending: pendingPhone ? { masked: maskPhone(pendingPhone.phone), confirmAction: request.url('phone_confirm') } : null,
      } : null,
      error,
    }, status);
  }

  async function enrolled(request: StepRequest, outcome: Extract<VerifyOutcome, { ok: true }>) {
    await request.saveState({ pendingTotp: null, webauthnChallenge: null, pendingPhone: null });
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
      async phone_send(request) {
        const phone = normalizePhone(request.body.phone, deps.config.phoneDefaultCountry);
        if (!phone) return page(request, request.t('mfa.phone_invalid'), 400);
        const target = { phone, channel: request.body.channel === 'voice' ? 'voice' : 'sms' } as const;
        const outcome = await deps.mfa.phone.send(request.details.session!.accountId, `enroll-phone:${request.uid}`, target, codeMessage(request, deps.config.issuerName));
        if (!outcome.ok) {
          const { error, status } = sendRefusal(request, outcome);
          return page(request, error, status);
        }
        await request.saveState({ pendingPhone: deps.mfa.phone.seal(target) });
        return page(request, null);
      },
      async phone_confirm(request) {
        const state = await request.state();
        if (typeof state.pendingPhone !== 'string') return request.reload();
        const target = deps.mfa.phone.unseal(state.pendingPhone);
        const label = `${request.t(target.channel === 'sms' ? 'mfa.phone_sms' : 'mfa.phone_voice')} ${maskPhone(target.phone)}`;
        const outcome = await deps.mfa.confirmPhone(request.details.session!.accountId, `enroll-phone:${request.uid}`, target, request.body.code, label);
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
