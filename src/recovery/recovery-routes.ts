import { randomBytes } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountService } from '../account/account.service.ts';
import type { AccountStore } from '../account/account.store.ts';
import { parseIdentifier } from '../account/common-id.ts';
import { maskEmail, type RecoveryEmail } from '../account/recovery-email.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Config } from '../config/config.ts';
import type { CsrfGuard } from '../http/csrf.ts';
import { formBody } from '../http/form-body.ts';
import type { PageData, Renderer } from '../http/renderer.ts';
import { translator } from '../i18n/i18n.ts';
import type { MessageKey } from '../i18n/en.ts';
import type { InteractionStateStore } from '../interaction/interaction-state.store.ts';
import { oneAtATime } from '../interaction/one-at-a-time.ts';
import type { MfaService, VerifyOutcome } from '../mfa/mfa.service.ts';
import { normalizeCode } from '../mfa/totp.ts';
import { policyRules } from '../interaction/steps/password-change.ts';
import { isDomainError } from '../http/middleware.ts';
import { addressKey, type LoginThrottle, type ThrottleRule } from '../throttle/login-throttle.ts';
import type { AnonymousCap } from '../throttle/anonymous-cap.ts';
import type { PolicyViolation } from '../password/password-policy.ts';
import type { Captcha } from './captcha.ts';
import { OTP_CODE_TTL_SECONDS, RECOVERY_FLOW_TTL_SECONDS, RECOVERY_START_THROTTLE } from '../config/defaults.ts';

/** Starting resets from one address: a handful, then waits, so many accounts cannot be probed. */
const START_RULE: ThrottleRule = RECOVERY_START_THROTTLE;
const FLOW_TTL_SECONDS = RECOVERY_FLOW_TTL_SECONDS;

export interface RecoveryDeps {
  config: Config;
  renderer: Renderer;
  csrf: CsrfGuard;
  state: InteractionStateStore;
  captcha: Captcha;
  throttle: LoginThrottle;
  /** Each start page stores a new flow (with its captcha challenge): counted like every anonymous record. */
  anonymousCap: AnonymousCap;
  accounts: AccountStore;
  accountService: AccountService;
  recoveryEmail: RecoveryEmail;
  mfa: MfaService;
  audit: AuditLog;
  /** Offer "verify your identity with your ID card" (POST /idv/start) as another way in. */
  idvAvailable: boolean;
}

interface Flow {
  stage?: 'code' | 'factor' | 'password' | 'done';
  challenge?: string;
  accountId?: string;
  email?: string;
  webauthnChallenge?: string;
  phoneFactor?: string;
}

/**
 * The forgotten-password flow: Common ID and a captcha, a 6-digit code mailed to the registered
 * recovery address, one of the account's second factors if it has any (a reset never removes
 * MFA), then a new password. Afterwards every session ends (relying parties are told) and a notice
 * goes to the recovery address. Its state lives server-side, keyed by a random flow id in a cookie.
 */
export function recoveryRoutes(deps: RecoveryDeps): Router {
  const router = new Router({ prefix: '/recover' });
  const cookieName = deps.config.production ? '__Host-akamon_recover' : 'akamon_recover';
  const key = (flowId: string) => `recover:${flowId}`;

  function flowId(ctx: Context): string | undefined {
    const id = ctx.cookies.get(cookieName, { signed: true });
    return id && /^[A-Za-z0-9_-]{22}$/.test(id) ? id : undefined;
  }
  const save = (id: string, flow: Flow) => deps.state.merge(key(id), flow as Record<string, unknown>, FLOW_TTL_SECONDS);
  const render = (ctx: Context, view: string, title: MessageKey, data: PageData = {}, status = 200) => deps.renderer.page(ctx, view, title, data, status);
  const t = (ctx: Context) => translator(ctx.state.locale);

  async function startPage(ctx: Context, error: string | null = null, status = 200) {
    await deps.anonymousCap.take(ctx.ip);
    const id = randomBytes(16).toString('base64url');
    const challenge = await deps.captcha.challenge();
    await save(id, { challenge: challenge.challenge });
    ctx.cookies.set(cookieName, id, { signed: true, httpOnly: true, sameSite: 'lax', secure: deps.config.production, path: '/', maxAge: FLOW_TTL_SECONDS * 1000, overwrite: true });
    render(
      ctx,
      'recover-start',
      'recover.title',
      { action: '/recover/start', challenge: JSON.stringify(challenge).replace(/</g, '\\u003c'), error, idvAction: deps.idvAvailable ? '/idv/start' : null },
      status,
    );
  }

  async function factorPage(ctx: Context, id: string, flow: Flow, error: string | null = null, status = 200) {
    const factors = await deps.mfa.factors(flow.accountId!);
    const options = await deps.mfa.webauthnAuthenticationOptions(flow.accountId!);
    if (options) await save(id, { ...flow, webauthnChallenge: options.challenge });
    const phones = factors.filter((f) => f.kind === 'phone');
    const sentTo = phones.find((f) => f.id === flow.phoneFactor);
    render(
      ctx,
      'recover-factor',
      'recover.factor_title',
      {
        codeAction: factors.some((f) => f.kind === 'totp' || f.kind === 'token') ? '/recover/factor/totp' : null,
        phones: phones.map((f) => ({ id: f.id, label: f.label, sendAction: '/recover/factor/phone_send' })),
        phoneCode: sentTo ? { label: sentTo.label, action: '/recover/factor/phone' } : null,
        webauthn: options ? { options: JSON.stringify(options).replace(/</g, '\\u003c'), action: '/recover/factor/webauthn', mode: 'get', label: t(ctx)('mfa.webauthn_use') } : null,
        error,
      },
      status,
    );
  }

  function passwordPage(ctx: Context, errors: string[] = [], status = 200) {
    render(ctx, 'recover-password', 'recover.password_title', { action: '/recover/password', rules: policyRules(t(ctx), deps.config.passwordProfile), errors }, status);
  }

  router.get('/', (ctx) => startPage(ctx));

  // Every POST: a form of ours (CSRF) and a flow at the expected stage, else back to the start.
  // The posts of one flow run one at a time, so a stage (the captcha, the final password) is
  // passed once however often the form is sent; the later copies find the flow moved on.
  const step = (stage: Flow['stage'] | 'start', handler: (ctx: Context, id: string, flow: Flow, body: Record<string, unknown>) => Promise<void>) =>
    [
      formBody,
      async (ctx: Context) => {
        const body = ctx.request.body as Record<string, unknown>;
        if (!deps.csrf.valid(ctx, body._csrf)) return deps.renderer.error(ctx, 'error.csrf', 403);
        const id = flowId(ctx);
        if (!id) return startPage(ctx, t(ctx)('recover.expired'), 400);
        const ran = await oneAtATime(deps.state, key(id), FLOW_TTL_SECONDS, async (state) => {
          const flow = state as Flow;
          if (stage === 'start' ? flow.stage !== undefined || !flow.challenge : flow.stage !== stage) return startPage(ctx, t(ctx)('recover.expired'), 400);
          await handler(ctx, id, flow, body);
        });
        if (!ran) deps.renderer.error(ctx, 'error.conflict', 409);
      },
    ] as const;

  router.post(
    '/start',
    ...step('start', async (ctx, id, flow, body) => {
      const limit = await deps.throttle.countUse([{ key: addressKey(ctx.ip, 'recover'), rule: START_RULE }]);
      if (limit.blocked || limit.waitSeconds > 0) {
        ctx.set('Retry-After', String(limit.waitSeconds));
        return startPage(ctx, t(ctx)('recover.rate_limited', { minutes: Math.max(1, Math.ceil(limit.waitSeconds / 60)) }), 429);
      }
      // The captcha is single use: the flow forgets its challenge now.
      await save(id, { challenge: '' });
      if (!(await deps.captcha.verify(body.captcha, flow.challenge!))) return startPage(ctx, t(ctx)('recover.captcha_failed'), 400);
      const commonId = parseIdentifier(String(body.identifier ?? ''), deps.config.realmSuffix);
      if (!commonId) return startPage(ctx, t(ctx)('identifier.invalid'), 400);
      const account = await deps.accounts.findByCommonId(commonId);
      // Unknown accounts get the same answer as accounts without a recovery address.
      if (account?.status !== 'active' || !account.recovery_email) return render(ctx, 'recover-no-email', 'recover.no_email_title');
      const email = account.recovery_email;
      const sent = await deps.recoveryEmail.sendCode(account.id, `reset:${id}`, email, (code) => ({
        subject: t(ctx)('mail.reset_subject', { service: deps.config.issuerName }),
        text: t(ctx)('mail.reset_body', { service: deps.config.issuerName, code, minutes: OTP_CODE_TTL_SECONDS / 60 }),
      }));
      if (!sent.ok) {
        if (sent.reason === 'rate_limited') ctx.set('Retry-After', String(sent.waitSeconds));
        return startPage(
          ctx,
          t(ctx)(sent.reason === 'rate_limited' ? 'recover.rate_limited' : 'mfa.phone_delivery_failed', {
            minutes: sent.reason === 'rate_limited' ? Math.max(1, Math.ceil(sent.waitSeconds / 60)) : 0,
          }),
          sent.reason === 'rate_limited' ? 429 : 503,
        );
      }
      await save(id, { stage: 'code', accountId: account.id, email });
      render(ctx, 'recover-code', 'recover.code_title', { action: '/recover/code', masked: maskEmail(email) });
    }),
  );

  router.post(
    '/code',
    ...step('code', async (ctx, id, flow, body) => {
      const result = await deps.recoveryEmail.checkCode(flow.accountId!, `reset:${id}`, normalizeCode(body.code));
      if (result !== 'ok') {
        const message = t(ctx)(result === 'wrong' ? 'mfa.wrong_code' : 'recover.code_expired');
        return render(ctx, 'recover-code', 'recover.code_title', { action: '/recover/code', masked: maskEmail(flow.email!), error: message }, 400);
      }
      const hasFactors = (await deps.mfa.factors(flow.accountId!)).length > 0;
      const next: Flow = { ...flow, stage: hasFactors ? 'factor' : 'password' };
      await save(id, next);
      if (hasFactors) return factorPage(ctx, id, next);
      passwordPage(ctx);
    }),
  );

  const factorStep = (verify: (flow: Flow & { webauthnChallenge?: string; phoneFactor?: string }, body: Record<string, unknown>, id: string) => Promise<VerifyOutcome>) =>
    step('factor', async (ctx, id, flow, body) => {
      const outcome = await verify(flow, body, id);
      if (!outcome.ok) {
        const message =
          outcome.reason === 'locked'
            ? t(ctx)('mfa.locked', { minutes: Math.ceil(outcome.waitSeconds / 60) })
            : t(ctx)(outcome.reason === 'webauthn_failed' ? 'mfa.webauthn_failed' : outcome.reason === 'replayed' ? 'mfa.replayed' : 'mfa.wrong_code');
        return factorPage(ctx, id, flow, message, outcome.reason === 'locked' ? 429 : 400);
      }
      await save(id, { ...flow, stage: 'password' });
      passwordPage(ctx);
    });
  router.post('/factor/totp', ...factorStep((flow, body) => deps.mfa.verifyTotp(flow.accountId!, body.code)));
  router.post(
    '/factor/phone_send',
    ...step('factor', async (ctx, id, flow, body) => {
      const factor = (await deps.mfa.factors(flow.accountId!)).find((f) => f.id === body.factor && f.kind === 'phone');
      if (!factor) return factorPage(ctx, id, flow, t(ctx)('mfa.code_expired'), 400);
      const sent = await deps.mfa.phone.send(flow.accountId!, `reset:${id}:${factor.id}`, deps.mfa.phone.target(factor), (code) =>
        t(ctx)('mfa.phone_text', { code: code.split('').join(' '), service: deps.config.issuerName }),
      );
      if (!sent.ok)
        return factorPage(
          ctx,
          id,
          flow,
          t(ctx)(sent.reason === 'rate_limited' ? 'mfa.phone_rate_limited' : 'mfa.phone_delivery_failed', {
            minutes: sent.reason === 'rate_limited' ? Math.max(1, Math.ceil(sent.waitSeconds / 60)) : 0,
          }),
          sent.reason === 'rate_limited' ? 429 : 503,
        );
      const next: Flow = { ...flow, phoneFactor: factor.id };
      await save(id, next);
      await factorPage(ctx, id, next);
    }),
  );
  router.post(
    '/factor/phone',
    ...factorStep(async (flow, body, id) =>
      flow.phoneFactor ? deps.mfa.verifyPhone(flow.accountId!, flow.phoneFactor, `reset:${id}:${flow.phoneFactor}`, body.code) : { ok: false, reason: 'expired' },
    ),
  );
  router.post(
    '/factor/webauthn',
    ...factorStep(async (flow, body) => (flow.webauthnChallenge ? deps.mfa.verifyWebauthn(flow.accountId!, body.credential, flow.webauthnChallenge) : { ok: false, reason: 'webauthn_failed' })),
  );

  router.post(
    '/password',
    ...step('password', async (ctx, id, flow, body) => {
      try {
        await deps.accountService.resetPassword(flow.accountId!, String(body.new ?? ''), String(body.confirm ?? ''));
      } catch (error) {
        if (!isDomainError(error)) throw error;
        if (error.code === 'password_policy') {
          const { violations, limits } = error.details as { violations: PolicyViolation[]; limits: { minLength: number; maxLength: number; minKinds: number } };
          const vars = { min: limits.minLength, max: limits.maxLength, kinds: limits.minKinds };
          return passwordPage(
            ctx,
            violations.map((v) => t(ctx)(`violation.${v}` as MessageKey, vars)),
            400,
          );
        }
        if (error.code === 'password_mismatch') return passwordPage(ctx, [t(ctx)('password_change.mismatch')], 400);
        throw error;
      }
      await save(id, { stage: 'done' });
      await deps.audit.record({ actor: 'self', action: 'password.reset', accountId: flow.accountId!, details: { via: 'recovery_email' } });
      await deps.recoveryEmail
        .notify(flow.email!, t(ctx)('mail.reset_done_subject', { service: deps.config.issuerName }), t(ctx)('mail.reset_done_body', { service: deps.config.issuerName }))
        .catch((error: Error) => ctx.state.log.warn({ err: { message: error.message } }, 'password reset notice not sent'));
      render(ctx, 'recover-done', 'recover.done_title', { signInUrl: '/account' });
    }),
  );

  return router;
}
