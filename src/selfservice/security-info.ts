import type Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountRow } from '../account/account.store.ts';
import { normalizeEmail } from '../account/recovery-email.ts';
import { sha256 } from '../crypto/tokens.ts';
import { formBody } from '../http/form-body.ts';
import type { MessageKey } from '../i18n/en.ts';
import { translator } from '../i18n/i18n.ts';
import { lengthAdvice, policyRules } from '../interaction/steps/password-change.ts';
import { normalizeCode } from '../mfa/totp.ts';
import { DomainError } from '../shared/errors.ts';
import type { AccountHomeDeps } from './account-home.ts';
import type { HomeSession } from './home-session.ts';
import { OTP_CODE_TTL_SECONDS } from '../config/defaults.ts';

export function securityInfoRoutes(router: Router, deps: AccountHomeDeps, home: HomeSession): void {
  const { cookie, setCookie, signedIn, postedBy, freshEnough, whileLive } = home;
  /** "Security info": the sign-in methods, the password and the recovery email. */
  async function securityPage(ctx: Context, account: AccountRow, notice: { errors?: string[]; message?: string; pendingEmail?: string } = {}, status = 200) {
    const t = translator(ctx.state.locale);
    const factors = await deps.mfa.factors(account.id);
    deps.renderer.page(
      ctx,
      'security',
      'security.title',
      {
        factors: factors.map((f) => ({
          label: f.label,
          isDefault: f.is_default,
          removeAction: `/account/security/factors/${f.id}/remove`,
          defaultAction: `/account/security/factors/${f.id}/default`,
        })),
        addUrl: `/account/login?add=1&fresh=${factors.length ? '1' : 'recent'}&back=%2Faccount%2Fsecurity`,
        passwordAction: '/account/security/password',
        longNotice: (await lengthAdvice(deps.clients, t)).longNotice,
        rules: policyRules(t, deps.config.passwordProfile),
        recoveryEmail: account.recovery_email,
        emailAction: '/account/security/email',
        emailConfirmAction: notice.pendingEmail ? '/account/security/email/confirm' : null,
        pendingEmail: notice.pendingEmail ?? null,
        errors: notice.errors ?? [],
        message: notice.message ?? null,
      },
      status,
    );
  }

  router.get('/account/security', async (ctx) => {
    const account = await signedIn(ctx);
    if (!account) return ctx.redirect('/account/login?back=%2Faccount%2Fsecurity');
    await securityPage(ctx, account);
  });

  router.post('/account/security/factors/:id/:action', formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    const t = translator(ctx.state.locale);
    if (ctx.params.action === 'remove') {
      if (!(await freshEnough(ctx, current, '/account/security'))) return;
      const removed = await whileLive(ctx, current, async () => {
        const gone = await deps.mfa.removeFactor(current.account.id, ctx.params.id);
        if (gone) await deps.audit.record({ actor: 'self', action: 'mfa.removed', accountId: current.account.id });
        return gone;
      });
      if (removed === undefined) return;
      return securityPage(ctx, current.account, { message: t('security.removed') });
    }
    if (ctx.params.action === 'default' && (await deps.mfa.makeDefault(current.account.id, ctx.params.id))) {
      await deps.audit.record({ actor: 'self', action: 'mfa.default_changed', accountId: current.account.id });
      return securityPage(ctx, current.account, { message: t('security.default_changed') });
    }
    deps.renderer.error(ctx, 'error.bad_request', 400);
  });

  router.post('/account/security/password', formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    const t = translator(ctx.state.locale);
    const body = ctx.request.body as Record<string, string>;
    try {
      await deps.accountService.changePassword(current.account.id, body.current ?? '', body.new ?? '', body.confirm ?? '');
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      const messages: Record<string, MessageKey> = { password_mismatch: 'password_change.mismatch', wrong_current_password: 'password_change.wrong_current', locked: 'password.locked' };
      const errors =
        error.code === 'password_policy'
          ? (error.details.violations as string[]).map((v) => {
              const l = error.details.limits as { minLength: number; maxLength: number; minKinds: number };
              return t(`violation.${v}` as MessageKey, { min: l.minLength, max: l.maxLength, kinds: l.minKinds });
            })
          : [t(messages[error.code] ?? 'error.generic', { minutes: Math.ceil(Number(error.details.waitSeconds ?? 60) / 60) })];
      return securityPage(ctx, current.account, { errors }, error.code === 'locked' ? 429 : 400);
    }
    await deps.audit.record({ actor: 'self', action: 'password.changed', accountId: current.account.id, details: { reason: 'security_info' } });
    // This page's session began before the change, so it ends; the sign-in comes back through SSO.
    ctx.status = 303;
    ctx.redirect('/account/login?back=%2Faccount%2Fsecurity');
  });

  router.post('/account/security/email', formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    if (!(await freshEnough(ctx, current, '/account/security'))) return;
    const t = translator(ctx.state.locale);
    const email = normalizeEmail((ctx.request.body as Record<string, unknown>).email);
    if (!email) return securityPage(ctx, current.account, { errors: [t('mfa.recovery_invalid')] }, 400);
    const sent = await deps.recoveryEmail.sendCode(current.account.id, `change-email:${sha256(email.toLowerCase()).slice(0, 22)}`, email, (code) => ({
      subject: t('mail.code_subject', { service: deps.config.issuerName }),
      text: t('mail.code_body', { service: deps.config.issuerName, code, minutes: OTP_CODE_TTL_SECONDS / 60 }),
    }));
    if (!sent.ok) {
      return securityPage(
        ctx,
        current.account,
        {
          errors: [
            t(sent.reason === 'rate_limited' ? 'mfa.phone_rate_limited' : 'mfa.phone_delivery_failed', { minutes: sent.reason === 'rate_limited' ? Math.max(1, Math.ceil(sent.waitSeconds / 60)) : 0 }),
          ],
        },
        sent.reason === 'rate_limited' ? 429 : 503,
      );
    }
    setCookie(ctx, 'akamon_home_email', email, 600);
    await securityPage(ctx, current.account, { pendingEmail: email });
  });

  router.post('/account/security/email/confirm', formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    const t = translator(ctx.state.locale);
    const email = ctx.cookies.get(cookie('akamon_home_email'), { signed: true });
    if (!email) return securityPage(ctx, current.account, { errors: [t('mfa.code_expired')] }, 400);
    // The address was asked for after a fresh second factor; it changes only while that sign-in lives.
    const result = await whileLive(ctx, current, () =>
      deps.recoveryEmail.confirm(current.account.id, `change-email:${sha256(email.toLowerCase()).slice(0, 22)}`, email, normalizeCode((ctx.request.body as Record<string, unknown>).code)),
    );
    if (result === undefined) return;
    if (result !== 'ok') return securityPage(ctx, current.account, { errors: [t(result === 'wrong' ? 'mfa.wrong_code' : 'mfa.code_expired')], pendingEmail: email }, 400);
    setCookie(ctx, 'akamon_home_email', null, 0);
    const previous = current.account.recovery_email;
    await deps.audit.record({ actor: 'self', action: 'recovery_email.changed', accountId: current.account.id });
    // The old address hears about it: a changed recovery address is how accounts are taken over.
    if (previous && previous !== email) {
      await deps.recoveryEmail
        .notify(previous, t('mail.email_changed_subject', { service: deps.config.issuerName }), t('mail.email_changed_body', { service: deps.config.issuerName }))
        .catch((error: Error) => ctx.state.log.warn({ err: { message: error.message } }, 'recovery email change notice not sent'));
    }
    await securityPage(ctx, (await deps.accounts.findById(current.account.id))!, { message: t('security.email_changed') });
  });
}
