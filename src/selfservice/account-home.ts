import Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountService } from '../account/account.service.ts';
import type { AccountRow, AccountStore } from '../account/account.store.ts';
import { type AppPasswordService, isAppPasswordRefusal } from '../account/app-password.service.ts';
import { withRealm } from '../account/common-id.ts';
import { accountEmails } from '../account/reset-address.ts';
import type { RecoveryEmail } from '../account/recovery-email.ts';
import type { AccessService } from '../access/access.service.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { SigninLog } from '../audit/signin-log.ts';
import type { ClientStore } from '../client/client.store.ts';
import type { Config } from '../config/config.ts';
import type { Database } from '../db/database.ts';
import type { EducationService } from '../education/education.service.ts';
import type { CsrfGuard } from '../http/csrf.ts';
import { formBody } from '../http/form-body.ts';
import type { Renderer } from '../http/renderer.ts';
import type { MessageKey } from '../i18n/en.ts';
import { formatDateTime, translator } from '../i18n/i18n.ts';
import { localName } from '../client/client-settings.ts';
import type { MfaService } from '../mfa/mfa.service.ts';
import { passwordExpiry } from '../password/expiry.ts';
import type { Clock } from '../shared/clock.ts';
import { errorAnswer } from '../http/error-map.ts';
import { isDomainError } from '../http/middleware.ts';
import { emailRows } from './email-rows.ts';
import { homeSession } from './home-session.ts';
import { securityInfoRoutes } from './security-info.ts';
import { serviceDirectoryRoutes } from './service-directory.ts';
import { identityLinkRoutes } from './identity-link-page.ts';
import { connectedAppsRoutes, type Grants } from './connected-apps.ts';
import type { IdentityVerification } from '../idv/identity-verification.ts';
import type { IdvFlow } from '../idv/idv-flow.ts';

/** What the account home says after the app-password form. */
interface AppPasswordAnswer {
  created?: { name: string; secret: string };
  refused?: { error: string; name: string };
}

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
  /** The account's grants to systems, listed and ended on the connected-systems page. */
  grants: Grants;
  /** The provider's sessions: whether one sign-in in them is still live (oidc-payload.store.ts). */
  sessions: { authorizationLive(accountId: string, clientId: string, sid: string, options?: { hold?: boolean }): Promise<boolean> };
  /** One transaction for a change and the check that its session is live (Database#unitOfWork). */
  unitOfWork: Database['unitOfWork'];
  csrf: CsrfGuard;
  renderer: Renderer;
  idv: IdentityVerification;
  /** The trip through the upstream identity provider, when one is configured. */
  idvFlow: IdvFlow | undefined;
  /** The account home's own client secret, as registered. */
  clientSecret: () => Promise<string>;
}

/**
 * Akamon's own account home (/account): the person's account information, applying for MFA,
 * "sign out everywhere" and app passwords; with the security-info pages and the service directory.
 */
export function accountHome(deps: AccountHomeDeps): Router {
  const router = new Router();
  const home = homeSession(deps);
  const { config } = deps;
  const { setCookie, signedIn, postedBy, freshEnough, whileLive } = home;
  home.routes(router);
  securityInfoRoutes(router, deps, home);
  serviceDirectoryRoutes(router, deps, home);
  identityLinkRoutes(router, deps, home);
  connectedAppsRoutes(router, deps, home);

  async function educationStatus(t: ReturnType<typeof translator>, accountId: string): Promise<string> {
    const year = deps.education.currentYear();
    const passedOn = await deps.education.passedThisYear(accountId);
    return passedOn ? t('account.education_passed', { year, date: passedOn }) : t('account.education_not_taken', { year });
  }

  /** The account home; answering the app-password form, with the new one shown once or why the name typed was refused. */
  async function accountPage(ctx: Context, account: AccountRow, answer: AppPasswordAnswer = {}, status = 200) {
    const t = translator(ctx.state.locale);
    const factors = await deps.mfa.factors(account.id);
    const when = (d: Date | string | null) => (d ? formatDateTime(ctx.state.locale, d, deps.config.timeZone) : t('account.never'));
    const link = await deps.idv.linkOf(account.id);
    const expiry = passwordExpiry(account.password_set_at, factors.length > 0, deps.config.passwordExpiry, deps.clock.now());
    const mfaStatus = factors.length > 0 ? factors.map((f) => f.label).join(', ') : t(account.mfa_required ? 'account.mfa_pending' : 'account.mfa_off');
    const rows: Array<[MessageKey, string]> = [
      ['account.common_id', withRealm(account.common_id, config.realmSuffix)],
      ['account.name', account.name],
      ['account.affiliation', t(`affiliation.${account.affiliation}` as MessageKey)],
      ['account.status', t(`status.${account.status}` as MessageKey)],
      ['account.password_set', when(account.password_set_at)],
      ['account.mfa', mfaStatus],
      ['account.education', await educationStatus(t, account.id)],
      ['account.password_expires', expiry.expiresAt ? when(expiry.expiresAt) : t('account.password_never')],
      ['account.idv', link ? t('account.idv_linked', { date: when(link.linked_at) }) : t('account.idv_not_linked')],
    ];
    const signins = await deps.signinLog.list({ accountId: account.id, limit: 10 });
    const clientNames = new Map(
      await Promise.all(
        [...new Set(signins.map((e) => e.client_id).filter((c): c is string => Boolean(c)))].map(async (id) => {
          const client = await deps.clients.find(id);
          return [id, client ? localName(ctx.state.locale, client.name, client.name_ja) : id] as const;
        }),
      ),
    );
    // Answering a POST (a new app password shown once), the page is the account home: a reload
    // shows it again without the password and makes no second one.
    deps.renderer.page(
      ctx,
      'account',
      'account.title',
      {
        pageUrl: '/account',
        recentSignins: signins.map((e) => ({
          at: when(e.occurred_at),
          system: e.client_id ? (clientNames.get(e.client_id) ?? e.client_id) : '-',
          place: e.ip ?? '-',
          result: t(e.result === 'success' ? 'account.signin_success' : 'account.signin_failure'),
        })),
        signOutEverywhereAction: '/account/sign-out-everywhere',
        name: account.name,
        rows: rows.map(([label, value]) => ({ label: t(label), value })),
        emails: emailRows(t, accountEmails(account, config), { addLink: true }),
        logoutUrl: '/account/logout',
        mfaApplyAction: factors.length === 0 && !account.mfa_required ? '/account/mfa' : null,
        // Applied for (or required) but not set up, say after Cancel: the set-up starts again from here.
        mfaSetupUrl: factors.length === 0 && account.mfa_required ? '/account/login?add=1&fresh=recent&back=%2Faccount' : null,
        appPasswords: (await deps.appPasswords.list(account.id)).map((p) => ({
          name: p.name,
          created: when(p.created_at),
          lastUsed: when(p.last_used_at),
          revokeAction: `/account/app-passwords/${p.id}/revoke`,
        })),
        appPasswordAction: '/account/app-passwords',
        newAppPassword: answer.created ?? null,
        appPasswordError: answer.refused?.error ?? null,
        appPasswordName: answer.refused?.name ?? '',
      },
      status,
    );
  }

  router.get('/account', async (ctx) => {
    const account = await signedIn(ctx);
    if (!account) return ctx.redirect('/account/login');
    await accountPage(ctx, account);
  });

  // "Sign out everywhere": every session, grant and refresh token of the account ends now.
  router.post('/account/sign-out-everywhere', formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    await deps.accountService.endingSessions(current.account.id, (ended) => deps.audit.record({ actor: 'self', action: 'sessions.ended', accountId: current.account.id, details: { ended } }));
    setCookie(ctx, 'akamon_home', null, 0);
    ctx.status = 303;
    ctx.redirect('/');
  });

  // App passwords: an account that has a second factor must have shown it in this sign-in.
  router.post('/account/app-passwords', formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    if (!(await freshEnough(ctx, current, '/account'))) return;
    const name = String((ctx.request.body as Record<string, unknown>).name ?? '');
    let created: Awaited<ReturnType<AppPasswordService['create']>> | undefined;
    try {
      created = await whileLive(ctx, current, () => deps.appPasswords.create(current.account.id, name));
    } catch (error) {
      // A refused name or the cap: said on this page, which has the revoke buttons, with the name kept.
      if (!isAppPasswordRefusal(error)) throw error;
      const { message, status } = errorAnswer(error);
      return accountPage(ctx, current.account, { refused: { error: translator(ctx.state.locale)(message), name } }, status);
    }
    if (created) await accountPage(ctx, current.account, { created: { name: created.appPassword.name, secret: created.secret } });
  });

  router.post('/account/app-passwords/:id/revoke', formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    try {
      await deps.appPasswords.revoke(current.account.id, ctx.params.id);
    } catch (error) {
      // Already gone: nothing to do. Anything else (the database away) is for the error pages.
      if (!isDomainError(error, 'app_password_not_found')) throw error;
    }
    ctx.status = 303;
    ctx.redirect('/account');
  });

  // Applying for MFA: from the next sign-in (which starts right away) a second factor is required.
  router.post('/account/mfa', formBody, async (ctx) => {
    const current = await postedBy(ctx);
    if (!current) return;
    await deps.unitOfWork(async () => {
      await deps.accountService.setMfaRequired(current.account.common_id, true);
      await deps.audit.record({ actor: 'self', action: 'mfa.applied', accountId: current.account.id });
    });
    ctx.status = 303;
    ctx.redirect('/account/login');
  });

  return router;
}
