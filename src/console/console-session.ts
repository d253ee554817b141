/*
 * The console's session, as the pages of other modules use it (dashboard-page.ts, import-page.ts):
 *
 *   export function dashboardRoutes(router: Router, deps: ConsoleDeps, session: ConsoleSession): void
 *
 *   interface ConsoleSession {
 *     // The signed-in operator of this request, or undefined when the answer was already sent: a
 *     // redirect to the console's sign-in (which comes back to this page, or to `back` for a POST),
 *     // or the plain 404 page for a person without a console role.
 *     operator(ctx, back?): Promise<ConsoleOperator | undefined>;
 *     // The same for a POST, after its CSRF token (_csrf in the form body, parsed by formBody) was
 *     // checked; a bad token answers the 403 page. `back`: the page the form is on.
 *     posted(ctx, back): Promise<ConsoleOperator | undefined>;
 *     // A second factor shown within CONSOLE_FRESH_SECONDS; otherwise a step-up through the sign-in is
 *     // started that comes back to `back` (a /console path) and false is returned (answer sent). The
 *     // `values` typed into a form sent then are kept for `back` (draft below), never in a URL.
 *     fresh(ctx, operator, back, values?): Promise<boolean>;
 *     // The values kept by fresh for this page and operator, once; {} when there are none.
 *     draft(ctx, operator): Promise<Record<string, string>>;
 *     // A page in the console's frame (views/console-layout.eta: the nav of CONSOLE_NAV the role may
 *     // see). data.invalid names the id of the field a refusal is about: the view's it.field(id, hint?)
 *     // marks it (aria-invalid, aria-describedby the alert of views/console-alert.eta).
 *     page(ctx, operator, view, titleKey, data?, status?): void;
 *     // The console's error page: a message key, or a DomainError from HelpDesk (shown through
 *     // error-map.ts; a role's refusal says which roles may); `back` is the page it links back to.
 *     error(ctx, operator, problem, status?, back?): void;
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
import { answerTo, errorAnswer } from '../http/error-map.ts';
import type { MessageKey } from '../i18n/en.ts';
import { type Translate, translator } from '../i18n/i18n.ts';
import { ACR_PHISHING_RESISTANT, phishingResistant } from '../mfa/assurance.ts';
import type { HelpDesk } from '../operator/help-desk.ts';
import type { OperatorStore } from '../operator/operator.store.ts';
import { may, PERMISSIONS, PERSON_ROLES, type Permission, type Principal } from '../operator/permissions.ts';
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
  operator(ctx: Context, back?: string): Promise<ConsoleOperator | undefined>;
  posted(ctx: Context, back: string): Promise<ConsoleOperator | undefined>;
  fresh(ctx: Context, operator: ConsoleOperator, back: string, values?: Record<string, string>): Promise<boolean>;
  draft(ctx: Context, operator: ConsoleOperator): Promise<Record<string, string>>;
  page(ctx: Context, operator: ConsoleOperator, view: string, titleKey: MessageKey, data?: Record<string, unknown>, status?: number): void;
  error(ctx: Context, operator: ConsoleOperator | undefined, problem: MessageKey | unknown, status?: number, back?: string): void;
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
  /** Short-lived server-side state: the single-use attempts of forms (form-attempt.ts), the drafts kept across a step-up. */
  state: Pick<InteractionStateStore, 'get' | 'merge' | 'transition'>;
}

/** Paths a sign-in may come back to: the console's own pages (Common IDs and ids in them). */
const CONSOLE_PATH = /^\/console(\/[A-Za-z0-9/_-]*)?$/;

/** How long a form's values wait for the operator to come back from a step-up (a sign-in with the key). */
const DRAFT_SECONDS = 10 * 60;

/** The id of a refused form's alert (views/console-alert.eta), which the field it is about points to. */
const ERROR_ID = 'console-error';

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

  async function operator(ctx: Context, back = ctx.method === 'GET' ? ctx.path : undefined): Promise<ConsoleOperator | undefined> {
    const current = await site.session(ctx);
    if (!current || !phishingResistant(current.amr)) {
      // Back to the page asked for, or to the page of the form sent after the session ended.
      const query = back && CONSOLE_PATH.test(back) ? `?back=${encodeURIComponent(back)}` : '';
      ctx.status = 303;
      ctx.redirect(`/console/login${query}`);
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
    const { invalid } = data;
    // A field's aria attributes: marked and pointing to the alert when the refusal is about it, and to its own hint.
    const field = (id: string, hint?: string) => {
      const described = [invalid === id ? ERROR_ID : '', hint ?? ''].filter(Boolean).join(' ');
      return `${invalid === id ? ' aria-invalid="true"' : ''}${described ? ` aria-describedby="${described}"` : ''}`;
    };
    deps.renderer.page(
      ctx,
      view,
      titleKey,
      { nav, operatorName: who.account.name, operatorRole: who.principal.role, logoutUrl: '/console/logout', wide: true, field, errorId: ERROR_ID, ...data },
      status,
    );
  }

  const draftKey = (who: ConsoleOperator, path: string) => `console-draft:${who.principal.actor}:${path}`;

  /** What a refusal says: a role's says who may do it instead; others are HelpDesk's or the page's message. */
  function refusalText(t: Translate, problem: unknown): { message: string; hint?: string } {
    if (!(problem instanceof DomainError)) return { message: t(problem as MessageKey) };
    const answer = errorAnswer(problem);
    const permission = problem.code === 'forbidden' ? problem.details.permission : undefined;
    if (typeof permission !== 'string' || !Object.hasOwn(PERMISSIONS, permission)) return { message: t(answer.message) };
    const roles = PERSON_ROLES.filter((role) => (PERMISSIONS[permission as Permission] as readonly string[]).includes(role));
    return {
      message: t(answer.message),
      hint: roles.length ? t('console.forbidden_roles', { roles: roles.map((role) => t(`console.role_${role}`)).join(t('console.list_separator')) }) : t('console.forbidden_nobody'),
    };
  }

  return {
    operator,
    async posted(ctx, back) {
      if (!deps.csrf.valid(ctx, (ctx.request.body as Record<string, unknown> | undefined)?._csrf)) {
        deps.renderer.error(ctx, 'error.csrf', 403);
        return undefined;
      }
      return operator(ctx, back);
    },
    async fresh(ctx, who, back, values) {
      const age = deps.clock.now().getTime() / 1000 - who.authTime;
      if (phishingResistant(who.amr) && age <= CONSOLE_FRESH_SECONDS) return true;
      // Kept server-side for this operator and page: a reason is no URL's business.
      if (values) await deps.state.merge(draftKey(who, back), { values }, DRAFT_SECONDS);
      ctx.status = 303;
      ctx.redirect(`/console/login?fresh=1&back=${encodeURIComponent(back)}`);
      return false;
    },
    async draft(ctx, who) {
      const key = draftKey(who, ctx.path);
      const { values } = await deps.state.get(key);
      if (!values) return {};
      await deps.state.merge(key, { values: null }, DRAFT_SECONDS);
      return values as Record<string, string>;
    },
    page,
    error(ctx, who, problem, status = 400, back) {
      const answer = problem instanceof DomainError ? answerTo(ctx, problem) : undefined;
      if (problem instanceof Error && !answer) throw problem;
      const { message, hint } = refusalText(translator(ctx.state.locale), problem);
      if (!who) return deps.renderer.page(ctx, 'error', 'error.title', { message }, answer?.status ?? status);
      page(ctx, who, 'console-error', 'error.title', { message, hint, back: back ?? null, pageUrl: back ?? '/console' }, answer?.status ?? status);
    },
    notFound,
  };
}
