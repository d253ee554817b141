import { mailedCodeRefusal, sendRefusal } from '../http/send-refusal.ts';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountService } from '../account/account.service.ts';
import type { AccountStore } from '../account/account.store.ts';
import { parseIdentifier } from '../account/common-id.ts';
import { maskEmail, type RecoveryEmail } from '../account/recovery-email.ts';
import { accountEmails, type ResetVia } from '../account/reset-address.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Config } from '../config/config.ts';
import type { CsrfGuard } from '../http/csrf.ts';
import { formBody } from '../http/form-body.ts';
import type { PageData } from '../http/renderer.ts';
import { translator } from '../i18n/i18n.ts';
import type { MessageKey } from '../i18n/en.ts';
import { FlowStore, type FlowStoreDeps } from '../flow/flow-store.ts';
import type { MfaService } from '../mfa/mfa.service.ts';
import { FactorChallenge } from '../interaction/methods/factor-challenge.ts';
import { factorMethods } from '../interaction/methods/factor-methods.ts';
import type { MethodHost } from '../interaction/methods/method.ts';
import { normalizeCode } from '../mfa/totp.ts';
import { policyRules } from '../interaction/steps/password-change.ts';
import { isDomainError } from '../http/middleware.ts';
import type { PolicyViolation } from '../password/password-policy.ts';
import type { Captcha } from './captcha.ts';
import type { Meter } from '../metrics/meter.ts';
import { OTP_CODE_TTL_SECONDS } from '../config/defaults.ts';

/** The flow's state, its cookie, lifetime and start limit (the `recover` kind), and the anonymous cap. */
export interface RecoveryDeps extends FlowStoreDeps {
  config: Config;
  csrf: CsrfGuard;
  captcha: Captcha;
  accounts: AccountStore;
  accountService: AccountService;
  recoveryEmail: RecoveryEmail;
  mfa: MfaService;
  audit: AuditLog;
  meter: Meter;
  /** Offer "verify your identity with your ID card" (POST /idv/start) as another way in. */
  idvAvailable: boolean;
}

/** The address that shows a flow's current page again. */
const CONTINUE = '/recover/continue';

interface Flow {
  stage?: 'code' | 'factor' | 'password' | 'done';
  challenge?: string;
  accountId?: string;
  /** Where the code went, and the notice goes: the address accountEmails chose for the reset. */
  email?: string;
  via?: ResetVia;
  /** The factor challenge's own values (the method shown, a WebAuthn challenge, the phone a code went to). */
  challengeMethod?: string | null;
  webauthnChallenge?: string | null;
  phoneFactor?: string | null;
}

/**
 * The forgotten-password flow: Common ID and a captcha, a 6-digit code mailed to the account's
 * reset address (account/reset-address.ts: the confirmed recovery address, else a trusted
 * university-registered one), one of the account's second factors if it has any (a reset never
 * removes MFA), then a new password. Afterwards every session ends (relying parties are told) and a
 * notice goes to that address. Its state lives in a FlowStore of the `recover` kind.
 */
export function recoveryRoutes(deps: RecoveryDeps): Router {
  const router = new Router({ prefix: '/recover' });
  const flows = new FlowStore<Flow>('recover', deps);
  // A page answering a POST is the flow's current page: GET /recover/continue shows it again.
  const render = (ctx: Context, view: string, title: MessageKey, data: PageData = {}, status = 200) => deps.renderer.page(ctx, view, title, { pageUrl: CONTINUE, ...data }, status);
  const t = (ctx: Context) => translator(ctx.state.locale);
  // "Verify your identity with your ID card" (POST /idv/start): another way in, where there is one.
  const idvAction = deps.idvAvailable ? '/idv/start' : null;

  // Each start page is a new flow holding its captcha challenge; the start limit counts the
  // resets tried from it (POST /start), not the pages shown.
  async function startPage(ctx: Context, error: string | null = null, status = 200, typed = '') {
    const challenge = await deps.captcha.challenge();
    await flows.open(ctx, { challenge: challenge.challenge });
    // A new flow: its page is the start page itself.
    render(
      ctx,
      'recover-start',
      'recover.title',
      { action: '/recover/start', challenge: JSON.stringify(challenge).replace(/</g, '\\u003c'), error, idvAction, identifier: typed, pageUrl: '/recover' },
      status,
    );
  }

  function codePage(ctx: Context, flow: Flow, error: string | null = null, status = 200) {
    render(ctx, 'recover-code', 'recover.code_title', { action: '/recover/code', masked: maskEmail(flow.email!), error }, status);
  }

  const donePage = (ctx: Context) => render(ctx, 'recover-done', 'recover.done_title', { signInUrl: '/account' });

  // The account's second factors, as sign-in asks for them; codes sent here prove this flow only.
  const challenge = new FactorChallenge(deps, factorMethods(deps));
  /** This flow as the place a method runs: its state is the flow's, its forms post to /recover/factor/<action>. */
  function hostOf(ctx: Context, id: string, flow: Flow, body: Record<string, unknown> = {}): MethodHost {
    let current: Record<string, unknown> = { ...flow };
    return {
      ctx,
      accountId: flow.accountId!,
      flow: `reset:${id}`,
      body,
      t: t(ctx),
      state: async () => current,
      async saveState(patch) {
        current = { ...current, ...patch };
        await flows.save(id, patch as Partial<Flow>);
      },
      url: (action) => `/recover/factor/${action}`,
    };
  }

  async function factorPage(ctx: Context, host: MethodHost, error: string | null = null, status = 200) {
    const data = await challenge.page(host, error);
    render(ctx, 'mfa-challenge', 'mfa.verify_title', { ...data, lead: t(ctx)('recover.factor_lead'), cantUseUrl: '/recover/factor?help=1', abortAction: null }, status);
  }

  /** The new password's form, naming the account (for the password manager that saves it). */
  async function passwordPage(ctx: Context, flow: Flow, errors: string[] = [], status = 200) {
    const commonId = (await deps.accounts.findById(flow.accountId!))?.common_id ?? '';
    render(ctx, 'recover-password', 'recover.password_title', { action: '/recover/password', rules: policyRules(t(ctx), deps.config.passwordProfile), errors, commonId }, status);
  }

  router.get('/', (ctx) => startPage(ctx));

  /**
   * The account still resets to the address the flow's code went to: a flow for an address the
   * account no longer has (an ID-card recovery removed one someone else set, the person replaced
   * it) or for an account no longer active is over, whatever code it holds.
   */
  async function stillResetsTo(flow: Flow): Promise<boolean> {
    const account = await deps.accounts.findById(flow.accountId!);
    const reset = account?.status === 'active' ? accountEmails(account, deps.config).reset : undefined;
    return reset?.possible === true && reset.to === flow.email;
  }

  // The flow's current page again (a reload, the language switch, the address of a form opened on
  // its own): whatever stage it is at, or a new start when there is none.
  router.get('/continue', (ctx) =>
    flows.withFlow(ctx, async (current) => {
      const flow = current?.flow;
      if (flow?.stage === 'code') return codePage(ctx, flow);
      if (flow?.stage === 'factor') return factorPage(ctx, hostOf(ctx, current!.id, flow));
      if (flow?.stage === 'password') return passwordPage(ctx, flow);
      if (flow?.stage === 'done') return donePage(ctx);
      ctx.redirect('/recover');
    }),
  );
  router.get(['/start', '/code', '/password', '/factor/:action'], (ctx) => ctx.redirect(CONTINUE));

  // Every POST: a form of ours (CSRF) and a flow at the expected stage, else back to the start.
  // The posts of one flow run one at a time, so a stage (the captcha, the final password) is
  // passed once however often the form is sent; the later copies find the flow moved on.
  const step = (stage: Flow['stage'] | 'start', handler: (ctx: Context, id: string, flow: Flow, body: Record<string, unknown>) => Promise<void>) =>
    [
      formBody,
      async (ctx: Context) => {
        const body = ctx.request.body as Record<string, unknown>;
        if (!deps.csrf.valid(ctx, body._csrf)) return deps.renderer.error(ctx, 'error.csrf', 403);
        await flows.withFlow(ctx, async (current) => {
          if (!current || (stage === 'start' ? current.flow.stage !== undefined || !current.flow.challenge : current.flow.stage !== stage)) return startPage(ctx, t(ctx)('recover.expired'), 400);
          if (stage !== 'start' && !(await stillResetsTo(current.flow))) return startPage(ctx, t(ctx)('recover.expired'), 400);
          await handler(ctx, current.id, current.flow, body);
        });
      },
    ] as const;

  router.post(
    '/start',
    ...step('start', async (ctx, id, flow, body) => {
      // Starting resets from one address: a handful, then waits, so many accounts cannot be probed.
      const admission = await flows.admit(ctx);
      if (!admission.ok) return startPage(ctx, t(ctx)('recover.rate_limited', { minutes: Math.max(1, Math.ceil(admission.waitSeconds / 60)) }), 429);
      // The captcha is single use: the flow forgets its challenge now.
      await flows.save(id, { challenge: '' });
      const typed = String(body.identifier ?? '').slice(0, 256);
      if (!(await deps.captcha.verify(body.captcha, flow.challenge!))) return startPage(ctx, t(ctx)('recover.captcha_failed'), 400, typed);
      const commonId = parseIdentifier(typed, deps.config.realmSuffix);
      if (!commonId) return startPage(ctx, t(ctx)('identifier.invalid'), 400, typed);
      const account = await deps.accounts.findByCommonId(commonId);
      // Unknown accounts get the same answer as accounts without an address a reset may go to.
      const reset = account?.status === 'active' ? accountEmails(account, deps.config).reset : undefined;
      if (!account || !reset?.possible) return render(ctx, 'recover-no-email', 'recover.no_email_title', { idvAction });
      const email = reset.to;
      const sent = await deps.recoveryEmail.sendCode(account.id, `reset:${id}`, email, (code) => ({
        subject: t(ctx)('mail.reset_subject', { service: deps.config.issuerName }),
        text: t(ctx)('mail.reset_body', { service: deps.config.issuerName, code, minutes: OTP_CODE_TTL_SECONDS / 60 }),
      }));
      if (!sent.ok) {
        const { error, status } = sendRefusal(ctx, t(ctx), sent, 'recover.rate_limited');
        return startPage(ctx, error, status);
      }
      const next: Flow = { stage: 'code', accountId: account.id, email, via: reset.via };
      await flows.save(id, next);
      deps.meter.passwordReset('code_sent');
      codePage(ctx, next);
    }),
  );

  router.post(
    '/code',
    ...step('code', async (ctx, id, flow, body) => {
      const result = await deps.recoveryEmail.checkCode(flow.accountId!, `reset:${id}`, normalizeCode(body.code));
      if (result !== 'ok') {
        deps.meter.passwordReset(result === 'wrong' ? 'wrong_code' : result === 'expired_or_used' ? 'code_expired' : 'code_locked');
        const { error, status } = mailedCodeRefusal(ctx, t(ctx), result, 'recover.code_expired');
        return codePage(ctx, flow, error, status);
      }
      const hasFactors = (await deps.mfa.factors(flow.accountId!)).length > 0;
      const next: Flow = { ...flow, stage: hasFactors ? 'factor' : 'password' };
      await flows.save(id, next);
      if (hasFactors) return factorPage(ctx, hostOf(ctx, id, next));
      await passwordPage(ctx, next);
    }),
  );

  router.post(
    '/factor/:action',
    ...step('factor', async (ctx, id, flow, body) => {
      if (!challenge.actionNames.includes(ctx.params.action)) return deps.renderer.error(ctx, 'error.not_found', 404);
      const host = hostOf(ctx, id, flow, body);
      const result = await challenge.act(ctx.params.action, host);
      if (!result.ok) return factorPage(ctx, host, result.error, result.status);
      await flows.save(id, { stage: 'password' });
      await passwordPage(ctx, flow);
    }),
  );

  // The challenge again (the way back from "I can't use any of these"), and that page itself.
  router.get('/factor', (ctx) =>
    flows.withFlow(ctx, async (current) => {
      if (current?.flow.stage !== 'factor') return ctx.redirect('/recover');
      if (ctx.query.help === '1') return render(ctx, 'mfa-cant-use', 'mfa.cant_use_title', { idvAction, backUrl: '/recover/factor' });
      await factorPage(ctx, hostOf(ctx, current.id, current.flow));
    }),
  );

  router.post(
    '/password',
    ...step('password', async (ctx, id, flow, body) => {
      try {
        await deps.accountService.resetPassword(flow.accountId!, String(body.new ?? ''), String(body.confirm ?? ''), () =>
          deps.audit.record({ actor: 'self', action: 'password.reset', accountId: flow.accountId!, details: { via: flow.via! } }),
        );
      } catch (error) {
        if (!isDomainError(error)) throw error;
        if (error.code === 'password_policy') {
          const { violations, limits } = error.details as { violations: PolicyViolation[]; limits: { minLength: number; maxLength: number; minKinds: number } };
          const vars = { min: limits.minLength, max: limits.maxLength, kinds: limits.minKinds };
          return passwordPage(
            ctx,
            flow,
            violations.map((v) => t(ctx)(`violation.${v}` as MessageKey, vars)),
            400,
          );
        }
        if (error.code === 'password_mismatch') return passwordPage(ctx, flow, [t(ctx)('password_change.mismatch')], 400);
        throw error;
      }
      await flows.save(id, { stage: 'done' });
      deps.meter.passwordReset('completed');
      await deps.recoveryEmail
        .notify(flow.email!, t(ctx)('mail.reset_done_subject', { service: deps.config.issuerName }), t(ctx)('mail.reset_done_body', { service: deps.config.issuerName }))
        .catch((error: Error) => ctx.state.log.warn({ err: { message: error.message } }, 'password reset notice not sent'));
      donePage(ctx);
    }),
  );

  return router;
}
