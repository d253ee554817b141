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

export const ACCOUNT_CLIENT_ID = 'akamon-account';

export interface AccountHomeDeps {
  config: Config;
  accounts: AccountStore;
  accountService: AccountService;
  mfa: MfaService;
  appPasswords: AppPasswordService;
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

  /** The signed-in person of the account home and the assurance of that sign-in, if still good. */
  async function session(ctx: Context): Promise<{ account: AccountRow; acr: string } | undefined> {
    const raw = ctx.cookies.get(cookie('akamon_home'), { signed: true });
    const [accountId, expires, acr] = raw?.split('|') ?? [];
    const account = accountId && Number(expires) > deps.clock.now().getTime() ? await deps.accounts.findById(accountId) : undefined;
    const signedInAt = Number(expires) - SESSION_SECONDS * 1000;
    // A password reissued or changed since this page was opened ends this page's session too.
    if (!account || account.status !== 'active' || new Date(account.password_set_at).getTime() > signedInAt) return undefined;
    return { account, acr: acr ?? '' };
  }

  const signedIn = async (ctx: Context) => (await session(ctx))?.account;

  /** A POST from the account home: a valid CSRF token and a live session, or the answer is sent. */
  async function postedBy(ctx: Context): Promise<{ account: AccountRow; acr: string } | undefined> {
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
    if (current.acr !== ACR_MFA && (await deps.mfa.factors(current.account.id)).length > 0) {
      ctx.status = 303;
      return ctx.redirect('/account/login?mfa=1');
    }
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
    setCookie(ctx, 'akamon_home_flow', `${state}|${verifier}`, 600);
    const url = oidc.buildAuthorizationUrl(discovered, {
      redirect_uri: redirectUri,
      scope: 'openid profile email',
      state,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ui_locales: ctx.state.locale,
      // Step-up for actions that need a second factor shown in this sign-in.
      ...(ctx.query.mfa === '1' ? { acr_values: ACR_MFA } : {}),
    });
    ctx.redirect(url.href);
  });

  router.get('/account/callback', async (ctx) => {
    const [state, verifier] = ctx.cookies.get(cookie('akamon_home_flow'), { signed: true })?.split('|') ?? [];
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
    const acr = String(tokens.claims()!.acr ?? '');
    setCookie(ctx, 'akamon_home', `${sub}|${deps.clock.now().getTime() + SESSION_SECONDS * 1000}|${acr}|${tokens.id_token}`, SESSION_SECONDS);
    ctx.redirect('/account');
  });

  router.get('/account/logout', async (ctx) => {
    const idToken = ctx.cookies.get(cookie('akamon_home'), { signed: true })?.split('|')[3];
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
