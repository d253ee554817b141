/*
 * The console's session, as the pages of other modules use it (dashboard-page.ts, import-page.ts):
 *
 *   export function dashboardRoutes(router: Router, deps: ConsoleDeps, session: ConsoleSession): void
 *
 *   interface ConsoleSession {
 *     // The signed-in operator of this request, or undefined when the answer was already sent: a
 *     // redirect to the console's sign-in, or the plain 404 page for a person without a console role.
 *     operator(ctx): Promise<ConsoleOperator | undefined>;
 *     // The same for a POST, after its CSRF token (_csrf in the form body, parsed by formBody) was
 *     // checked; a bad token answers the 403 page.
 *     posted(ctx): Promise<ConsoleOperator | undefined>;
 *     // A second factor shown within CONSOLE_FRESH_SECONDS; otherwise a step-up through the sign-in is
 *     // started that comes back to `back` (a /console path) and false is returned (answer sent).
 *     fresh(ctx, operator, back): boolean;
 *     // A page in the console's frame (views/console-layout.eta: the nav of CONSOLE_NAV the role may see).
 *     page(ctx, operator, view, titleKey, data?, status?): void;
 *     // The console's error page: a message key, or a DomainError from HelpDesk (shown through error-map.ts).
 *     error(ctx, operator, problem, status?): void;
 *     // The plain 404 page, the same for an unknown path, a person without a role and an out-of-scope account.
 *     notFound(ctx): void;
 *   }
 *   interface ConsoleOperator { account: AccountRow; principal: Principal; authTime: number; amr: string[] }
 *
 * ConsoleDeps (below) is what the console's pages are given; a page that needs more adds its field there
 * (one line, additive) and app.ts passes it.
 *
 * Permission checks belong to HelpDesk and the other operator services; a page only hides what the role
 * may not use, with may(operator.principal, permission). The nav entries are listed once, in CONSOLE_NAV.
 */
import type { Context } from 'koa';
import type Router from '@koa/router';
import type { AccountRow } from '../account/account.store.ts';
import type { ClientStore } from '../client/client.store.ts';
import { CONSOLE_FRESH_SECONDS, CONSOLE_SESSION_TTL_SECONDS } from '../config/defaults.ts';
import { errorAnswer } from '../http/error-map.ts';
import type { MessageKey } from '../i18n/en.ts';
import { translator } from '../i18n/i18n.ts';
import { ACR_PHISHING_RESISTANT, phishingResistant } from '../mfa/assurance.ts';
import type { HelpDesk } from '../operator/help-desk.ts';
import type { OperatorStore } from '../operator/operator.store.ts';
import { may, type Permission, type Principal } from '../operator/permissions.ts';
import type { ImportJobs } from '../operator/import-job.ts';
import { CONSOLE_CLIENT_ID } from '../selfservice/account-client.ts';
import { type FirstPartySite, homeSession, type SiteSessionDeps } from '../selfservice/home-session.ts';
import { DomainError } from '../shared/errors.ts';
import type { DashboardService } from '../dashboard/dashboard.service.ts';
import type { InteractionStateStore } from '../interaction/interaction-state.store.ts';

/** Who is using the console: their own account, their role and scope, and how they signed in. */
export interface ConsoleOperator {
  account: AccountRow;
  /** What HelpDesk and may() are given; its actor is `console:<Common ID>`. */
  principal: Principal;
  /** When the sign-in that showed the security key happened (seconds). */
  authTime: number;
  amr: string[];
}

export interface ConsoleSession {
  operator(ctx: Context): Promise<ConsoleOperator | undefined>;
  posted(ctx: Context): Promise<ConsoleOperator | undefined>;
  fresh(ctx: Context, operator: ConsoleOperator, back: string): boolean;
  page(ctx: Context, operator: ConsoleOperator, view: string, titleKey: MessageKey, data?: Record<string, unknown>, status?: number): void;
  error(ctx: Context, operator: ConsoleOperator | undefined, problem: MessageKey | unknown, status?: number): void;
  notFound(ctx: Context): void;
}

export interface NavEntry {
  path: string;
  label: MessageKey;
  /** Shown only to roles with this permission (the page itself is guarded by the service it calls). */
  permission: Permission;
}

/** The console's sections, in the order of its nav. */
export const CONSOLE_NAV: readonly NavEntry[] = [
  { path: '/console', label: 'console.nav_accounts', permission: 'account.read' },
  { path: '/console/dashboard', label: 'console.nav_dashboard', permission: 'dashboard.read' },
  { path: '/console/import', label: 'console.nav_import', permission: 'account.create' },
  { path: '/console/operators', label: 'console.nav_operators', permission: 'operator.manage' },
];

/** What the console's pages are given (app.ts builds it from the app's deps). */
export interface ConsoleDeps extends SiteSessionDeps {
  helpDesk: HelpDesk;
  operators: Pick<OperatorStore, 'personPrincipal'>;
  /** For the names of the systems in sign-in lists. */
  clients: Pick<ClientStore, 'find'>;
  /** The CSV imports (import-page.ts). */
  importJobs: ImportJobs;
  /** The ICT office's figures (dashboard-page.ts). */
  dashboard: DashboardService;
  /** Short-lived server-side state: the single-use attempt of each reissue form (help-desk-pages.ts). */
  state: Pick<InteractionStateStore, 'merge' | 'transition'>;
}

/** Paths a sign-in may come back to: the console's own pages (Common IDs and ids in them). */
const CONSOLE_PATH = /^\/console(\/[A-Za-z0-9/_-]*)?$/;

/** A clock skew allowed between the provider's auth_time and this check (the same process, in practice). */
const SKEW_SECONDS = 5;

/**
 * The console's sign-in (src/selfservice/home-session.ts with the console's settings): it always asks
 * for a phishing-resistant factor shown within CONSOLE_FRESH_SECONDS, so a console session starts
 * with a security key in the operator's hand, and a step-up for a dangerous action is the same request.
 */
function consoleSite(deps: ConsoleDeps): FirstPartySite {
  return {
    clientId: CONSOLE_CLIENT_ID,
    prefix: '/console',
    cookieName: 'akamon_console',
    sessionSeconds: CONSOLE_SESSION_TTL_SECONDS,
    back: CONSOLE_PATH,
    authorizationParams: () => ({ acr_values: ACR_PHISHING_RESISTANT, max_age: String(CONSOLE_FRESH_SECONDS) }),
    // The ID token's own amr and auth_time decide, not its acr: what was shown, and when.
    async accept(ctx, claims) {
      const accountId = String(claims.sub);
      const account = await deps.accounts.findById(accountId);
      // No console role: the console does not exist for this person (not even its key page).
      if (!account || !(await deps.operators.personPrincipal(account.id, account.common_id))) {
        deps.renderer.error(ctx, 'error.not_found', 404);
        return false;
      }
      if (!phishingResistant((Array.isArray(claims.amr) ? claims.amr : []).filter((m): m is string => typeof m === 'string'))) {
        deps.renderer.page(ctx, 'console-needs-key', 'console.needs_key_title', { securityUrl: '/account/security' }, 403);
        return false;
      }
      const age = deps.clock.now().getTime() / 1000 - Number(claims.auth_time ?? 0);
      if (!(age <= CONSOLE_FRESH_SECONDS + SKEW_SECONDS)) {
        ctx.state.log.warn({ age }, 'console sign-in with an old auth_time');
        deps.renderer.error(ctx, 'error.expired', 400);
        return false;
      }
      return true;
    },
  };
}

/**
 * The console's session for its pages (the interface at the top of this file), and the routes of its
 * sign-in (/console/login, /console/callback, /console/logout) on `router`.
 */
export function consoleSession(deps: ConsoleDeps, router: Router): ConsoleSession {
  const site = homeSession(deps, consoleSite(deps));
  site.routes(router);

  const notFound = (ctx: Context) => deps.renderer.error(ctx, 'error.not_found', 404);

  async function operator(ctx: Context): Promise<ConsoleOperator | undefined> {
    const current = await site.session(ctx);
    if (!current || !phishingResistant(current.amr)) {
      const back = CONSOLE_PATH.test(ctx.path) && ctx.method === 'GET' ? `?back=${encodeURIComponent(ctx.path)}` : '';
      ctx.status = 303;
      ctx.redirect(`/console/login${back}`);
      return undefined;
    }
    const principal = await deps.operators.personPrincipal(current.account.id, current.account.common_id);
    if (!principal) {
      notFound(ctx);
      return undefined;
    }
    return { account: current.account, principal, authTime: current.authTime, amr: current.amr };
  }

  function page(ctx: Context, who: ConsoleOperator, view: string, titleKey: MessageKey, data: Record<string, unknown> = {}, status = 200) {
    const nav = CONSOLE_NAV.filter((entry) => may(who.principal, entry.permission)).map((entry) => ({
      ...entry,
      current: entry.path === '/console' ? ctx.path === '/console' || ctx.path.startsWith('/console/accounts') : ctx.path.startsWith(entry.path),
    }));
    deps.renderer.page(ctx, view, titleKey, { nav, operatorName: who.account.name, operatorRole: who.principal.role, logoutUrl: '/console/logout', wide: true, ...data }, status);
  }

  return {
    operator,
    async posted(ctx) {
      if (!deps.csrf.valid(ctx, (ctx.request.body as Record<string, unknown> | undefined)?._csrf)) {
        deps.renderer.error(ctx, 'error.csrf', 403);
        return undefined;
      }
      return operator(ctx);
    },
    fresh(ctx, who, back) {
      const age = deps.clock.now().getTime() / 1000 - who.authTime;
      if (phishingResistant(who.amr) && age <= CONSOLE_FRESH_SECONDS) return true;
      ctx.status = 303;
      ctx.redirect(`/console/login?fresh=1&back=${encodeURIComponent(back)}`);
      return false;
    },
    page,
    error(ctx, who, problem, status = 400) {
      const answer = problem instanceof DomainError ? errorAnswer(problem) : undefined;
      if (problem instanceof Error && !answer) throw problem;
      const message = translator(ctx.state.locale)(answer ? answer.message : (problem as MessageKey));
      if (!who) return deps.renderer.page(ctx, 'error', 'error.title', { message }, answer?.status ?? status);
      page(ctx, who, 'console-error', 'error.title', { message }, answer?.status ?? status);
    },
    notFound,
  };
}
