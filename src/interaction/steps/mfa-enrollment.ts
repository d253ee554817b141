import QRCode from 'qrcode';
import { totpUri } from '../../mfa/totp.ts';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Facts, Step, StepRequest } from '../step.ts';
import type { VerifyOutcome } from '../../mfa/mfa.service.ts';
import type { StepDeps } from './deps.ts';
import { codeMessage, embedJson, finishWithFactor, mfaDemandedHere, refusal, sendRefusal } from './mfa-common.ts';
import { maskPhone, normalizePhone } from '../../mfa/phone.service.ts';
import { normalizeEmail } from '../../account/recovery-email.ts';
import { normalizeCode } from '../../mfa/totp.ts';
import { DomainError, RetryLaterError } from '../../shared/errors.ts';
import { errorAnswer } from '../../http/error-map.ts';
import { sha256 } from '../../crypto/tokens.ts';
import { ACCOUNT_CLIENT_ID } from '../../selfservice/account-client.ts';
import { mfaFresh, signedInWithin } from '../../mfa/assurance.ts';
import { FRESH_SIGNIN_SECONDS, OTP_CODE_TTL_SECONDS } from '../../config/defaults.ts';

const ADD_FACTOR_FRESH_SECONDS = FRESH_SIGNIN_SECONDS;

/**
 * A method may be added from the account home after proof given recently in this session: a second
 * factor when the account has one, else the password (the session's sign-in, auth_time). The
 * session alone never suffices: whoever holds a cookie could attach a factor of their own.
 */
function addingAllowed(facts: Facts, ctx: KoaContextWithOIDC): boolean {
  const now = Math.floor(facts.now.getTime() / 1000);
  const session = { amr: ctx.oidc.session?.amr, loginTs: ctx.oidc.session?.loginTs };
  if (facts.factors.length > 0) return mfaFresh(session, ADD_FACTOR_FRESH_SECONDS, now);
  return signedInWithin(session.loginTs, ADD_FACTOR_FRESH_SECONDS, now);
}

/**
 * Step 4: "More information required". MFA is demanded and the account has no second factor, so
 * the person sets one up now. The new secret lives, encrypted, in the interaction's server-side
 * state until one valid code confirms it: leaving halfway stores no factor. Once the factor is
 * proven, in the same interaction: a recovery email (confirmed by a mailed code) if the account
 * has none, then the offer of an app password, then a finish page that continues the sign-in.
 */
export function mfaEnrollmentStep(deps: StepDeps): Step {
  // A code proves the destination it went to: two overlapping sends cannot swap number or address.
  const purpose = (request: StepRequest, kind: 'phone' | 'email', destination: string) => `enroll-${kind}:${request.uid}:${sha256(destination.toLowerCase()).slice(0, 22)}`;
  const accountOf = async (request: StepRequest) => (await deps.accounts.findById(request.details.session!.accountId))!;

  async function page(request: StepRequest, error: string | null, status = 200) {
    const state = await request.state();
    if (typeof state.enrolled === 'string') return afterFactorPage(request, error, status);
    return factorPage(request, error, status);
  }

  /** After the factor: the recovery email while it is missing, then the finish page. */
  async function afterFactorPage(request: StepRequest, error: string | null, status = 200, newAppPassword: { name: string; secret: string } | null = null) {
    const state = await request.state();
    const account = await accountOf(request);
    if (deps.recoveryEmail.available && !account.recovery_email) {
      const pending = typeof state.pendingEmail === 'string' ? state.pendingEmail : null;
      return request.render(
        'mfa-recovery-email',
        'mfa.recovery_title',
        {
          sendAction: request.url('email_send'),
          pending: pending ? { email: pending, confirmAction: request.url('email_confirm') } : null,
          error,
        },
        status,
      );
    }
    request.render(
      'mfa-finish',
      'mfa.finish_title',
      {
        appPasswordAction: request.url('app_password'),
        finishAction: request.url('finish'),
        newAppPassword,
        recoveryEmail: account.recovery_email,
        error,
      },
      status,
    );
  }

  /** Only after a factor was proven in this interaction. */
  const afterFactor = (handler: (request: StepRequest, amr: string) => Promise<void>) => async (request: StepRequest) => {
    const state = await request.state();
    if (typeof state.enrolled !== 'string') return request.reload();
    await handler(request, state.enrolled);
  };

  async function factorPage(request: StepRequest, error: string | null, status = 200) {
    const state = await request.state();
    const pendingPhone = typeof state.pendingPhone === 'string' ? deps.mfa.phone.unseal(state.pendingPhone) : undefined;
    let sealed = typeof state.pendingTotp === 'string' ? state.pendingTotp : undefined;
    if (!sealed) {
      sealed = deps.mfa.pendingTotp().sealed;
      await request.saveState({ pendingTotp: sealed });
    }
    const secret = deps.mfa.unseal(sealed);
    const account = await accountOf(request);
    const uri = totpUri(secret, account.common_id, deps.config.issuerName);
    const options = await deps.mfa.webauthnRegistrationOptions(account);
    await request.saveState({ webauthnChallenge: options.challenge });
    const svg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
    request.render(
      'mfa-enroll',
      'mfa.enroll_title',
      {
        action: request.url('totp'),
        abortAction: request.url('abort'),
        qr: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`,
        secret: secret.match(/.{1,4}/g)!.join(' '),
        webauthn: { options: embedJson(options), action: request.url('webauthn'), mode: 'create', label: request.t('mfa.webauthn_register') },
        phone: deps.mfa.phone.available
          ? {
              sendAction: request.url('phone_send'),
              pending: pendingPhone ? { masked: maskPhone(pendingPhone.phone), confirmAction: request.url('phone_confirm') } : null,
            }
          : null,
        error,
      },
      status,
    );
  }

  async function enrolled(request: StepRequest, outcome: Extract<VerifyOutcome, { ok: true }>) {
    await request.saveState({ pendingTotp: null, webauthnChallenge: null, pendingPhone: null, enrolled: outcome.amr });
    await deps.audit.record({ actor: 'self', action: 'mfa.enrolled', accountId: outcome.factor.account_id, details: { kind: outcome.factor.kind, label: outcome.factor.label } });
    await afterFactorPage(request, null);
  }

  return {
    name: 'mfa_enrollment',
    skipForRevoked: true,
    checks: [
      {
        reason: 'mfa_enrollment_required',
        description: 'a second factor is required and the account has none',
        test: (facts, ctx) => facts.factors.length === 0 && mfaDemandedHere(facts, ctx),
      },
      {
        // From the account home's security info: one more method, after a recent second factor (or,
        // for the first one, a recent password).
        reason: 'mfa_factor_added',
        description: 'the person adds a sign-in method from the account home',
        test: (facts, ctx) => facts.client?.client_id === ACCOUNT_CLIENT_ID && ctx.oidc.params?.akamon_add_factor === '1' && ctx.oidc.result?.mfa_enrollment === undefined && addingAllowed(facts, ctx),
      },
    ],
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
        const outcome = await deps.mfa.phone.send(request.details.session!.accountId, purpose(request, 'phone', target.phone), target, codeMessage(request, deps.config.issuerName));
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
        const outcome = await deps.mfa.confirmPhone(request.details.session!.accountId, purpose(request, 'phone', target.phone), target, request.body.code, label);
        if (!outcome.ok) {
          const { error, status } = refusal(request, outcome);
          return page(request, error, status);
        }
        await enrolled(request, outcome);
      },
      email_send: afterFactor(async (request) => {
        const email = normalizeEmail(request.body.email);
        if (!email) return afterFactorPage(request, request.t('mfa.recovery_invalid'), 400);
        const accountId = request.details.session!.accountId;
        const outcome = await deps.recoveryEmail.sendCode(accountId, purpose(request, 'email', email), email, (code) => ({
          subject: request.t('mail.code_subject', { service: deps.config.issuerName }),
          text: request.t('mail.code_body', { service: deps.config.issuerName, code, minutes: OTP_CODE_TTL_SECONDS / 60 }),
        }));
        if (!outcome.ok) {
          const { error, status } = sendRefusal(request, outcome);
          return afterFactorPage(request, error, status);
        }
        await request.saveState({ pendingEmail: email });
        await afterFactorPage(request, null);
      }),
      email_confirm: afterFactor(async (request) => {
        const state = await request.state();
        if (typeof state.pendingEmail !== 'string') return afterFactorPage(request, null);
        const accountId = request.details.session!.accountId;
        const result = await deps.recoveryEmail.confirm(accountId, purpose(request, 'email', state.pendingEmail), state.pendingEmail, normalizeCode(request.body.code));
        if (result !== 'ok') return afterFactorPage(request, request.t(result === 'wrong' ? 'mfa.wrong_code' : 'mfa.code_expired'), 400);
        await deps.audit.record({ actor: 'self', action: 'recovery_email.confirmed', accountId });
        await request.saveState({ pendingEmail: null });
        await afterFactorPage(request, null);
      }),
      app_password: afterFactor(async (request) => {
        try {
          const accountId = request.details.session!.accountId;
          const { appPassword, secret } = await deps.appPasswords.create(accountId, String(request.body.name ?? ''));
          await deps.audit.record({ actor: 'self', action: 'app_password.created', accountId, details: { name: appPassword.name } });
          await afterFactorPage(request, null, 200, { name: appPassword.name, secret });
        } catch (error) {
          if (!(error instanceof DomainError) || error instanceof RetryLaterError) throw error;
          const { message, status } = errorAnswer(error);
          await afterFactorPage(request, request.t(message), status);
        }
      }),
      finish: afterFactor(async (request, amr) => {
        const account = await accountOf(request);
        // The recovery email is part of the enrolment while mail can be sent.
        if (deps.recoveryEmail.available && !account.recovery_email) return afterFactorPage(request, null);
        await finishWithFactor(request, 'mfa_enrollment', amr);
      }),
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
