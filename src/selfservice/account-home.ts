import Router from '@koa/router';
import type { Context } from 'koa';
import * as oidc from 'openid-client';
import type { AccountStore } from '../account/account.store.ts';
import { withRealm } from '../account/common-id.ts';
import type { Config } from '../config/config.ts';
import type { Renderer } from '../http/renderer.ts';
import { translator } from '../i18n/i18n.ts';
import type { MessageKey } from '../i18n/en.ts';
import type { AccountService } from '../account/account.service.ts';
import type { MfaService } from '../mfa/mfa.service.ts';
import type { CsrfGuard } from '../http/csrf.ts';
import { formBody } from '../http/form-body.ts';
import type { AccountRow } from '../account/account.store.ts';
import type { AppPasswordService } from '../account/app-password.service.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { normalizeEmail, type RecoveryEmail } from '../account/recovery-email.ts';
import { policyRules } from '../interaction/steps/password-change.ts';
import { normalizeCode } from '../mfa/totp.ts';
import { sha256 } from '../crypto/tokens.ts';
import { lengthAdvice } from '../password/length-advice.ts';
import type { EducationService } from '../education/education.service.ts';
import type { ClientStore } from '../client/client.store.ts';
import type { AccessService } from '../access/access.service.ts';
import { DENIAL_REASON_TEXT, DENIAL_TODO_TEXT } from '../access/denial-text.ts';
import { rolloutPhase } from '../mfa/rollout.ts';
import type { Clock } from '../shared/clock.ts';
import type { SigninLog } from '../audit/signin-log.ts';
import { passwordExpiry } from '../password/expiry.ts';
import { ACR_MFA } from '../mfa/assurance.ts';
import { DomainError } from '../shared/errors.ts';

import { ACCOUNT_CLIENT_ID } from './account-client.ts';

export interface AccountHomeDeps {
  config: Config;
  accounts: AccountStore;
  accountService: AccountService;
  mfa: MfaService;
  appPasswords: AppPasswordService;
  recoveryEmail: RecoveryEmail;
  audit: AuditLog;
  education: EducationService;
  clients: ClientStore;
  access: AccessService;
  clock: Clock;
  signinLog: SigninLog;
  sessions: { revokeAccount(accountId: string): Promise<number> };
  csrf: CsrfGuard;
  renderer: Renderer;
  /** The account home's own client secret, as registered. */
  clientSecret: () => Promise<string>;
}

const SESSION_SECONDS = 3600;
const FRESH_SECONDS = 600;

/**
 * Akamon's own account home: a first-party relying party of Akamon itself (authorization code +
 * PKCE through openid-client), so it signs in exactly as every campus system does.
 */
export function accountHome(deps: AccountHomeDeps): Router {
  const router = new Router();
  const { config } = deps;
  const secure = config.production;
  const cookie = (name: string) => (secure ? `__Host-${name}` : name);
  const redirectUri = `${config.issuer}/account/callback`;
  let discovered: Promise<oidc.Configuration> | undefined;

  // Inside a container the public issuer may not be reachable; AKAMON_INTERNAL_URL says where it
  // is. The forwarded headers make Akamon answer as it does through the TLS proxy (production
  // trusts them), so discovery still names the public endpoints.
  const issuerUrl = new URL(config.issuer);
  const fetchVia: oidc.CustomFetch | undefined = config.internalUrl
    ? (url, options) => fetch(url.replace(config.issuer, config.internalUrl!), {
      ...options,
      headers: { ...options.headers, 'x-forwarded-proto': issuerUrl.protocol.slice(0, -1), 'x-forwarded-host': issuerUrl.host },
    })
    : undefined;

  function configuration(): Promise<oidc.Configuration> {
    discovered ??= (async () => {
      const options: oidc.DiscoveryRequestOptions = {
        execute: config.issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [],
        ...(fetchVia ? { [oidc.customFetch]: fetchVia } : {}),
      };
      return oidc.discovery(new URL(config.issuer), ACCOUNT_CLIENT_ID, await deps.clientSecret(), undefined, options);
    })().catch((error) => {
      discovered = undefined;
      throw error;
    });
    return discovered;
  }

  // Path=/ because browsers accept a __Host- cookie only with it.
  const setCookie = (ctx: Context, name: string, value: string | null, maxAgeSeconds: number) =>
    ctx.cookies.set(cookie(name), value, { signed: true, httpOnly: true, sameSite: 'lax', secure, path: '/', maxAge: maxAgeSeconds * 1000, overwrite: true });

  /** The signed-in person of the account home, the assurance of that sign-in and when it happened. */
  async function session(ctx: Context): Promise<{ account: AccountRow; acr: string; authTime: number } | undefined> {
    const raw = ctx.cookies.get(cookie('akamon_home'), { signed: true });
    const [accountId, expires, acr, authTime] = raw?.split('|') ?? [];
    const account = accountId && Number(expires) > deps.clock.now().getTime() ? await deps.accounts.findById(accountId) : undefined;
    const signedInAt = Number(expires) - SESSION_SECONDS * 1000;
    // A password reissued or changed since this page was opened ends this page's session too.
    if (!account || account.status !== 'active' || new Date(account.password_set_at).getTime() > signedInAt) return undefined;
    return { account, acr: acr ?? '', authTime: Number(authTime) || 0 };
  }

  /**
   * Changes to how an account with MFA is protected need a second factor shown within the last
   * ten minutes; otherwise the person is sent through a fresh sign-in first (acr + max_age).
   */
  async function freshEnough(ctx: Context, current: { account: AccountRow; acr: string; authTime: number }, back: string): Promise<boolean> {
    if ((await deps.mfa.factors(current.account.id)).length === 0) return true;
    if (current.acr === ACR_MFA && deps.clock.now().getTime() / 1000 - current.authTime <= FRESH_SECONDS) return true;
    ctx.status = 303;
    ctx.redirect(`/account/login?fresh=1&back=${encodeURIComponent(back)}`);
    return false;
  }

  const signedIn = async (ctx: Context) => (await session(ctx))?.account;

  /** A POST from the account home: a valid CSRF token and a live session, or the answer is sent. */
  async function postedBy(ctx: Context): Promise<{ account: AccountRow; acr: string; authTime: number } | undefined> {
    if (!deps.csrf.valid(ctx, (ctx.request.body as Record<string, unknown>)._csrf)) {
      deps.renderer.error(ctx, 'error.csrf', 403);
      return undefined;
    }
    const current = await session(ctx);
    if (!current) ctx.redirect('/account/login');
    return current;
  }

  async function educationStatus(t: ReturnType<typeof translator>, accountId: string): Promise<string> {
    const year = deps.education.currentYear();
    const passedOn = await deps.education.passedThisYear(accountId);
    return passedOn ? t('account.education_passed', { year, date: passedOn }) : t('account.education_not_taken', { year });
  }

  async function accountPage(ctx: Context, account: AccountRow, newAppPassword: { name: string; secret: string } | null = null) {
    const t = translator(ctx.state.locale);
    const factors = await deps.mfa.factors(account.id);
    const when = (d: Date | string | null) => (d ? new Date(d).toLocaleString(ctx.state.locale === 'ja' ? 'ja-JP' : 'en-GB', { timeZone: deps.config.timeZone }) : t('account.never'));
    const expiry = passwordExpiry(account.password_set_at, factors.length > 0, deps.config.passwordExpiry, deps.clock.now());
    const mfaStatus = factors.length > 0
      ? factors.map((f) => f.label).join(', ')
      : t(account.mfa_required ? 'account.mfa_pending' : 'account.mfa_off');
    const rows: Array<[MessageKey, string]> = [
      ['account.common_id', withRealm(account.common_id, config.realmSuffix)],
      ['account.name', account.name],
      ['account.affiliation', t(`affiliation.${account.affiliation}` as MessageKey)],
      ['account.email', account.email ?? t('account.none')],
      ['account.status', t(`status.${account.status}` as MessageKey)],
      ['account.password_set', when(account.password_set_at)],
      ['account.mfa', mfaStatus],
      ['account.education', await educationStatus(t, account.id)],
      ['account.password_expires', expiry.expiresAt ? when(expiry.expiresAt) : t('account.password_never')],
    ];
    const signins = await deps.signinLog.list({ accountId: account.id, limit: 10 });
    const clientNames = new Map((await Promise.all([...new Set(signins.map((e) => e.client_id).filter((c): c is string => Boolean(c)))]
      .map(async (id) => [id, (await deps.clients.find(id))?.name ?? id] as const))));
    deps.renderer.page(ctx, 'account', 'account.title', {
      recentSignins: signins.map((e) => ({
        at: when(e.occurred_at), system: e.client_id ? clientNames.get(e.client_id) ?? e.client_id : '-', place: e.ip ?? '-',
        result: t(e.result === 'success' ? 'account.signin_success' : 'account.signin_failure'),
      })),
      signOutEverywhereAction: '/account/sign-out-everywhere',
      name: account.name,
      rows: rows.map(([label, value]) => ({ label: t(label), value })),
      logoutUrl: '/account/logout',
      mfaApplyAction: factors.length === 0 && !account.mfa_required ? '/account/mfa' : null,
      appPasswords: (await deps.appPasswords.list(account.id)).map((p) => ({
        name: p.name, created: when(p.created_at), lastUsed: when(p.last_used_at), revokeAction: `/account/app-passwords/${p.id}/revoke`,
      })),
      appPasswordAction: '/account/app-passwords',
      newAppPassword,
    });
  }

  /**
   * The service directory: every listed client, whether it demands MFA (○/×) and, for a signed-in
   * person, whether this account may use it, decided by the same rules that enforce access.
   */
  router.get('/services', async (ctx) => {
    const t = translator(ctx.state.locale);
    const account = await signedIn(ctx);
    const services = await Promise.all((await deps.clients.listed()).map(async (client) => {
      const decision = account ? await deps.access.decide(account, client) : undefined;
      return {
        name: client.name,
        description: client.description,
        homepage: client.homepage_url,
        mfa: client.require_mfa || rolloutPhase(deps.clock.now(), deps.config.mfaRollout, { warningFrom: client.mfa_warning_from, requiredFrom: client.mfa_required_from }).phase === 'required',
        forYou: decision === undefined ? null : decision.allowed
          ? { allowed: true, text: t('services.allowed') }
          : { allowed: false, text: t(DENIAL_REASON_TEXT[decision.reason], { client: client.name }), todo: t(DENIAL_TODO_TEXT[decision.reason]) },
      };
    }));
    deps.renderer.page(ctx, 'services', 'services.title', { services, signedIn: Boolean(account), signInUrl: '/account/login' });
  });

  router.get('/account', async (ctx) => {
    const account = await signedIn(ctx);
    if (!account) return ctx.redirect('/account/login');
    await accountPage(ctx, account);
  });

  /** "Security info": the sign-in methods, the password and the recovery email. */
  async function securityPage(ctx: Context, account: AccountRow, notice: { errors?: string[]; message?: string; pendingEmail?: string } = {}, status = 200) {
    const t = translator(ctx.state.locale);
    const factors = await deps.mfa.factors(account.id);
    deps.renderer.page(ctx, 'security', 'security.title', {
      factors: factors.map((f) => ({
        label: f.label, isDefault: f.is_default,
        removeAction: `/account/security/factors/${f.id}/remove`, defaultAction: `/account/security/factors/${f.id}/default`,
      })),
      addUrl: `/account/login?add=1${factors.length ? '&fresh=1' : ''}&back=%2Faccount%2Fsecurity`,
      passwordAction: '/account/security/password',
      longNotice: (await lengthAdvice(deps.clients, t)).longNotice,
      rules: policyRules(t, deps.config.passwordProfile),
      recoveryEmail: account.recovery_email,
      emailAction: '/account/security/email',
      emailConfirmAction: notice.pendingEmail ? '/account/security/email/confirm' : null,
      pendingEmail: notice.pendingEmail ?? null,
      errors: notice.errors ?? [],
      message: notice.message ?? null,
    }, status);
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
      if (await deps.mfa.removeFactor(current.account.id, ctx.params.id)) {
        await deps.audit.record({ actor: 'self', action: 'mfa.removed', accountId: current.account.id });
      }
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
      const errors = error.code === 'password_policy'
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
      text: t('mail.code_body', { service: deps.config.issuerName, code, minutes: 10 }),
    }));
    if (!sent.ok) {
      return securityPage(ctx, current.account, { errors: [t(sent.reason === 'rate_limited' ? 'mfa.phone_rate_limited' : 'mfa.phone_delivery_failed', { minutes: sent.reason === 'rate_limited' ? Math.max(1, Math.ceil(sent.waitSeconds / 60)) : 0 })] }, sent.reason === 'rate_limited' ? 429 : 503);
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
    const result = await deps.recoveryEmail.confirm(current.account.id, `change-email:${sha256(email.toLowerCase()).slice(0, 22)}`, email, normalizeCode((ctx.request.body as Record<string, unknown>).code));
    if (result !== 'ok') return securityPage(ctx, current.account, { errors: [t(result === 'wrong' ? 'mfa.wrong_code' : 'mfa.code_expired')], pendingEmail: email }, 400);
    setCookie(ctx, 'akamon_home_email', null, 0);
    const previous = current.account.recovery_email;
    await deps.audit.record({ actor: 'self', action: 'recovery_email.changed', accountId: current.account.id });
    // The old address hears about it: a changed recovery address is how accounts are taken over.
    if (previous && previous !== email) {
      await deps.recoveryEmail.notify(previous, t('mail.email_changed_subject', { service: deps.config.issuerName }), t('mail.email_changed_body', { service: deps.config.issuerName }))
        .catch((error: Error) => ctx.state.log.warn({ err: { message: error.message } }, 'recovery email change notice not sent'));
    }
    await securityPage(ctx, (await deps.accounts.findById(current.account.id))!, { message: t('security.email_changed') });
  });

  // "Sign out everywhere": every session, grant and refresh token of the account ends now.
  router.post('/account/sign-out-everywhere', formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    const ended = await deps.sessions.revokeAccount(current.account.id);
    await deps.audit.record({ actor: 'self', action: 'sessions.ended', accountId: current.account.id, details: { ended } });
    setCookie(ctx, 'akamon_home', null, 0);
    ctx.status = 303;
    ctx.redirect('/');
  });

  // App passwords: an account that has a second factor must have shown it in this sign-in.
  router.post('/account/app-passwords', formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    if (!(await freshEnough(ctx, current, '/account'))) return;
    try {
      const { appPassword, secret } = await deps.appPasswords.create(current.account.id, String((ctx.request.body as Record<string, unknown>).name ?? ''));
      await deps.audit.record({ actor: 'self', action: 'app_password.created', accountId: current.account.id, details: { name: appPassword.name } });
      await accountPage(ctx, current.account, { name: appPassword.name, secret });
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      deps.renderer.error(ctx, error.code === 'too_many_app_passwords' ? 'account.app_password_limit' : 'account.app_password_name', 400);
    }
  });

  router.post('/account/app-passwords/:id/revoke', formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    try {
      await deps.appPasswords.revoke(current.account.id, ctx.params.id);
      await deps.audit.record({ actor: 'self', action: 'app_password.revoked', accountId: current.account.id });
    } catch (error) {
      if (!(error instanceof DomainError)) throw error; // already gone: nothing to do
    }
    ctx.status = 303;
    ctx.redirect('/account');
  });

  // Applying for MFA: from the next sign-in (which starts right away) a second factor is required.
  router.post('/account/mfa', formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    await deps.accountService.setMfaRequired(current.account.common_id, true);
    await deps.audit.record({ actor: 'self', action: 'mfa.applied', accountId: current.account.id });
    ctx.status = 303;
    ctx.redirect('/account/login');
  });

  async function reachableConfiguration(ctx: Context): Promise<oidc.Configuration | undefined> {
    try {
      return await configuration();
    } catch (error) {
      ctx.state.log.error({ err: { name: (error as Error).name, message: (error as Error).message } }, 'account home cannot reach the issuer (set AKAMON_INTERNAL_URL?)');
      ctx.set('Retry-After', '30');
      deps.renderer.error(ctx, 'error.generic', 503);
      return undefined;
    }
  }

  router.get('/account/login', async (ctx) => {
    const discovered = await reachableConfiguration(ctx);
    if (!discovered) return;
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const back = typeof ctx.query.back === 'string' && /^\/account(\/[a-z/-]*)?$/.test(ctx.query.back) ? ctx.query.back : '/account';
    setCookie(ctx, 'akamon_home_flow', `${state}|${verifier}|${back}`, 600);
    const url = oidc.buildAuthorizationUrl(discovered, {
      redirect_uri: redirectUri,
      scope: 'openid profile email',
      state,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ui_locales: ctx.state.locale,
      // Step-up for changes that need a second factor shown within the last ten minutes.
      ...(ctx.query.fresh === '1' ? { acr_values: ACR_MFA, max_age: String(FRESH_SECONDS) } : {}),
      // Adding a sign-in method runs the enrolment step (after that step-up when there are factors).
      ...(ctx.query.add === '1' ? { akamon_add_factor: '1' } : {}),
    });
    ctx.redirect(url.href);
  });

  router.get('/account/callback', async (ctx) => {
    const [state, verifier, back] = ctx.cookies.get(cookie('akamon_home_flow'), { signed: true })?.split('|') ?? [];
    setCookie(ctx, 'akamon_home_flow', null, 0);
    if (!state || !verifier) return deps.renderer.error(ctx, 'error.expired', 400);
    const current = new URL(ctx.originalUrl, config.issuer);
    if (current.searchParams.has('error')) return ctx.redirect('/');
    const discovered = await reachableConfiguration(ctx);
    if (!discovered) return;
    let tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
    try {
      tokens = await oidc.authorizationCodeGrant(discovered, current, { pkceCodeVerifier: verifier, expectedState: state });
    } catch (error) {
      ctx.state.log.warn({ err: { name: (error as Error).name, code: (error as { code?: string }).code } }, 'account home sign-in failed');
      return deps.renderer.error(ctx, 'error.expired', 400);
    }
    const sub = tokens.claims()!.sub;
    const claims = tokens.claims()!;
    setCookie(ctx, 'akamon_home', `${sub}|${deps.clock.now().getTime() + SESSION_SECONDS * 1000}|${String(claims.acr ?? '')}|${Number(claims.auth_time ?? 0)}|${tokens.id_token}`, SESSION_SECONDS);
    ctx.redirect(back || '/account');
  });

  router.get('/account/logout', async (ctx) => {
    const idToken = ctx.cookies.get(cookie('akamon_home'), { signed: true })?.split('|')[4];
    setCookie(ctx, 'akamon_home', null, 0);
    const discovered = await reachableConfiguration(ctx);
    if (!discovered) return;
    const url = oidc.buildEndSessionUrl(discovered, {
      post_logout_redirect_uri: `${config.issuer}/`,
      ...(idToken ? { id_token_hint: idToken } : {}),
    });
    ctx.redirect(url.href);
  });

  return router;
}
