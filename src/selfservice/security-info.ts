import { mailedCodeRefusal, sendRefusal } from '../http/send-refusal.ts';
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountRow } from '../account/account.store.ts';
import { normalizeEmail } from '../account/recovery-email.ts';
import { accountEmails } from '../account/reset-address.ts';
import { sha256 } from '../crypto/tokens.ts';
import { formBody } from '../http/form-body.ts';
import type { MessageKey } from '../i18n/en.ts';
import { translator } from '../i18n/i18n.ts';
import { lengthAdvice, policyRules } from '../interaction/steps/password-change.ts';
import { shortestLengthLimit } from '../password/length-advice.ts';
import { rolloutPhase } from '../mfa/rollout.ts';
import { normalizeCode } from '../mfa/totp.ts';
import { DomainError } from '../shared/errors.ts';
import { isDomainError } from '../http/middleware.ts';
import type { AccountHomeDeps } from './account-home.ts';
import { emailRows } from './email-rows.ts';
import type { HomeSession } from './home-session.ts';
import { OTP_CODE_TTL_SECONDS } from '../config/defaults.ts';

/** Notices shown once on the security page after a redirect (a password change leads through a sign-in first). */
const FLASH_TEXT = { password_changed: 'security.password_changed' } as const satisfies Record<string, MessageKey>;
type Flash = keyof typeof FLASH_TEXT;
/** Long enough for the sign-in the notice waits behind; it is taken by the first page that shows it. */
const FLASH_SECONDS = 600;

export function securityInfoRoutes(router: Router, deps: AccountHomeDeps, home: HomeSession): void {
  const { cookie, setCookie, signedIn, postedBy, freshEnough, whileLive } = home;

  /** A signed cookie naming the account and the notice, so that another account signing in here never sees it. */
  const setFlash = (ctx: Context, account: AccountRow, flash: Flash) => setCookie(ctx, 'akamon_home_flash', `${account.id}|${flash}`, FLASH_SECONDS);
  function takeFlash(ctx: Context, account: AccountRow): MessageKey | undefined {
    const [accountId, flash] = ctx.cookies.get(cookie('akamon_home_flash'), { signed: true })?.split('|') ?? [];
    if (!flash) return undefined;
    setCookie(ctx, 'akamon_home_flash', null, 0);
    return accountId === account.id && Object.hasOwn(FLASH_TEXT, flash) ? FLASH_TEXT[flash as Flash] : undefined;
  }
  /**
   * "Security info": the sign-in methods, the password and the recovery email. `typedEmail` is the
   * address a refused change form sent, kept for correcting; the field is never filled otherwise
   * (not with the university address either: the person types the address they mean).
   */
  async function securityPage(ctx: Context, account: AccountRow, notice: { errors?: string[]; message?: string; pendingEmail?: string; typedEmail?: string } = {}, status = 200) {
    const t = translator(ctx.state.locale);
    const factors = await deps.mfa.factors(account.id);
    deps.renderer.page(
      ctx,
      'security',
      'security.title',
      {
        pageUrl: '/account/security',
        factors: factors.map((f) => ({
          label: f.label,
          isDefault: f.is_default,
          removeAction: `/account/security/factors/${f.id}/remove`,
          defaultAction: `/account/security/factors/${f.id}/default`,
        })),
        addUrl: `/account/login?add=1&fresh=${factors.length ? '1' : 'recent'}&back=%2Faccount%2Fsecurity`,
        passwordAction: '/account/security/password',
        commonId: account.common_id,
        longNotice: lengthAdvice(await shortestLengthLimit(deps.clients, deps.access, account), t, ctx.state.locale).longNotice,
        rules: policyRules(t, deps.config.passwordProfile),
        emails: emailRows(t, accountEmails(account, deps.config), { addLink: false }),
        emailAction: '/account/security/email',
        emailConfirmAction: notice.pendingEmail ? '/account/security/email/confirm' : null,
        pendingEmail: notice.pendingEmail ?? null,
        typedEmail: notice.typedEmail ?? '',
        errors: notice.errors ?? [],
        message: notice.message ?? null,
      },
      status,
    );
  }

  router.get('/account/security', async (ctx) => {
    const account = await signedIn(ctx);
    if (!account) return ctx.redirect('/account/login?back=%2Faccount%2Fsecurity');
    const t = translator(ctx.state.locale);
    const flash = takeFlash(ctx, account);
    // A code sent to a new recovery address is still waiting for this browser: the form stays after a reload.
    const pendingEmail = ctx.cookies.get(cookie('akamon_home_email'), { signed: true }) || undefined;
    await securityPage(ctx, account, { message: flash ? t(flash) : undefined, pendingEmail });
  });

  /** MFA is required of this account: set for it, or the university-wide rollout has reached "required". */
  const mfaRequired = (account: AccountRow) => account.mfa_required || rolloutPhase(deps.clock.now(), deps.config.mfaRollout).phase === 'required';

  router.post('/account/security/factors/:id/:action', formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    const t = translator(ctx.state.locale);
    if (ctx.params.action === 'remove') {
      // "Remove" asks first, on a page of its own (no script needed); only its form, which says
      // confirm=yes, removes. The only method of an account that must use MFA is refused at once,
      // before any step-up sign-in.
      if ((ctx.request.body as Record<string, unknown>).confirm !== 'yes') {
        const factors = await deps.mfa.factors(current.account.id);
        const factor = factors.find((f) => f.id === ctx.params.id);
        if (!factor) return deps.renderer.error(ctx, 'error.not_found', 404);
        if (factors.length === 1 && mfaRequired(current.account)) return securityPage(ctx, current.account, { errors: [t('security.remove_last_refused')] }, 409);
        if (!(await freshEnough(ctx, current, '/account/security'))) return;
        return deps.renderer.page(ctx, 'security-remove', 'security.remove_title', { method: factor.label, action: `/account/security/factors/${factor.id}/remove` });
      }
      if (!(await freshEnough(ctx, current, '/account/security'))) return;
      let removed: boolean | undefined;
      try {
        removed = await whileLive(ctx, current, async () => {
          const gone = await deps.mfa.removeFactor(current.account.id, ctx.params.id, { keepLast: mfaRequired(current.account) });
          if (gone) await deps.audit.record({ actor: 'self', action: 'mfa.removed', accountId: current.account.id });
          return gone;
        });
      } catch (error) {
        if (!isDomainError(error, 'last_method')) throw error;
        return securityPage(ctx, current.account, { errors: [t('security.remove_last_refused')] }, 409);
      }
      if (removed === undefined) return;
      return securityPage(ctx, current.account, { message: t('security.removed') });
    }
    if (ctx.params.action === 'default') {
      const made = await whileLive(ctx, current, async () => {
        const changed = await deps.mfa.makeDefault(current.account.id, ctx.params.id);
        if (changed) await deps.audit.record({ actor: 'self', action: 'mfa.default_changed', accountId: current.account.id });
        return changed;
      });
      if (made === undefined) return;
      if (made) return securityPage(ctx, current.account, { message: t('security.default_changed') });
    }
    deps.renderer.error(ctx, 'error.bad_request', 400);
  });

  router.post('/account/security/password', formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    const t = translator(ctx.state.locale);
    const body = ctx.request.body as Record<string, string>;
    try {
      await deps.accountService.changePassword(current.account.id, body.current ?? '', body.new ?? '', body.confirm ?? '', () =>
        deps.audit.record({ actor: 'self', action: 'password.changed', accountId: current.account.id, details: { reason: 'security_info' } }),
      );
    } catch (error) {
      const messages: Record<string, MessageKey> = { password_mismatch: 'password_change.mismatch', wrong_current_password: 'password_change.wrong_current', locked: 'password.locked' };
      // Anything else (the database away: a RetryLaterError) is for the error pages.
      if (!(error instanceof DomainError) || (error.code !== 'password_policy' && !messages[error.code])) throw error;
      const errors =
        error.code === 'password_policy'
          ? (error.details.violations as string[]).map((v) => {
              const l = error.details.limits as { minLength: number; maxLength: number; minKinds: number };
              return t(`violation.${v}` as MessageKey, { min: l.minLength, max: l.maxLength, kinds: l.minKinds });
            })
          : [t(messages[error.code]!, { minutes: Math.ceil(Number(error.details.waitSeconds ?? 60) / 60) })];
      return securityPage(ctx, current.account, { errors }, error.code === 'locked' ? 429 : 400);
    }
    // This page's session began before the change, so it ends; the sign-in comes back through SSO,
    // and the page it comes back to says the change was made.
    setFlash(ctx, current.account, 'password_changed');
    ctx.status = 303;
    ctx.redirect('/account/login?back=%2Faccount%2Fsecurity');
  });

  router.post('/account/security/email', formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    if (!(await freshEnough(ctx, current, '/account/security'))) return;
    const t = translator(ctx.state.locale);
    const typed = (ctx.request.body as Record<string, unknown>).email;
    const typedEmail = typeof typed === 'string' ? typed : '';
    const email = normalizeEmail(typed);
    if (!email) return securityPage(ctx, current.account, { errors: [t('mfa.recovery_invalid')], typedEmail }, 400);
    const sent = await deps.recoveryEmail.sendCode(current.account.id, `change-email:${sha256(email.toLowerCase()).slice(0, 22)}`, email, (code) => ({
      subject: t('mail.code_subject', { service: deps.config.issuerName }),
      text: t('mail.code_body', { service: deps.config.issuerName, code, minutes: OTP_CODE_TTL_SECONDS / 60 }),
    }));
    if (!sent.ok) {
      const { error, status } = sendRefusal(ctx, t, sent);
      return securityPage(ctx, current.account, { errors: [error], typedEmail }, status);
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
    // The address was asked for after a fresh second factor; it changes only while that sign-in
    // lives, in one transaction with its audit record.
    const result = await whileLive(ctx, current, async () => {
      const checked = await deps.recoveryEmail.confirm(
        current.account.id,
        `change-email:${sha256(email.toLowerCase()).slice(0, 22)}`,
        email,
        normalizeCode((ctx.request.body as Record<string, unknown>).code),
      );
      if (checked === 'ok') await deps.audit.record({ actor: 'self', action: 'recovery_email.changed', accountId: current.account.id });
      return checked;
    });
    if (result === undefined) return;
    if (result !== 'ok') {
      const { error, status } = mailedCodeRefusal(ctx, t, result);
      return securityPage(ctx, current.account, { errors: [error], pendingEmail: email }, status);
    }
    setCookie(ctx, 'akamon_home_email', null, 0);
    await deps.recoveryEmail
      .replaced(current.account.recovery_email, email, {
        subject: t('mail.email_changed_subject', { service: deps.config.issuerName }),
        text: t('mail.email_changed_body', { service: deps.config.issuerName }),
      })
      .catch((error: Error) => ctx.state.log.warn({ err: { message: error.message } }, 'recovery email change notice not sent'));
    await securityPage(ctx, (await deps.accounts.findById(current.account.id))!, { message: t('security.email_changed') });
  });
}
