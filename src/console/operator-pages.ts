import type Router from '@koa/router';
import type { Context } from 'koa';
import { AFFILIATIONS } from '../account/account-input.ts';
import { withRealm } from '../account/common-id.ts';
import { answerTo } from '../http/error-map.ts';
import { formBody } from '../http/form-body.ts';
import type { MessageKey } from '../i18n/en.ts';
import { formatDateTime, translator } from '../i18n/i18n.ts';
import { apiTokenId, type OperatorInputProblem, roleAndScope, tokenExpiry, tokenName } from '../operator/operator-input.ts';
import { OPERATOR_TOKEN_DEFAULT_DAYS, OPERATOR_TOKEN_MAX_DAYS } from '../config/defaults.ts';
import { may, PERSON_ROLES, ROLES } from '../operator/permissions.ts';
import { DomainError } from '../shared/errors.ts';
import type { ConsoleDeps, ConsoleOperator, ConsoleSession } from './console-session.ts';
import { FormAttempts } from './form-attempt.ts';

const PAGE = '/console/operators';

/** How long a new-token form stays good: one POST of it makes a token (a reload of the secret's page makes none). */
const TOKEN_ATTEMPT_SECONDS = 30 * 60;

/** The page's two forms (a person's role, a new token): which one a refusal or a step-up is about and what was typed in it. */
type Form = 'grant' | 'token';
type Typed = Record<string, string>;
type Filled = { form: Form; typed: Typed };

/** What was typed into a form, as the form names its fields, for the form shown again with a message. */
function typedIn(body: Record<string, unknown>): Typed {
  const typed: Typed = {};
  for (const [name, value] of Object.entries(body)) if (name !== '_csrf' && name !== 'attempt' && typeof value === 'string') typed[name] = value;
  return typed;
}

/**
 * A form sent when the key had to be shown again, from the draft session.fresh kept for the page: its
 * fields, and under `form` which of the two forms they are (no field of either is so named).
 */
function filledFrom({ form, ...typed }: Typed): Filled | undefined {
  return form === 'grant' || form === 'token' ? { form, typed } : undefined;
}

/** Each rule of operator-input.ts as the page says it, and the field (its id, without the form's prefix) it is about. */
const PROBLEMS: Record<OperatorInputProblem, { key: MessageKey; field: string }> = {
  role: { key: 'console.refused_role', field: 'role' },
  department: { key: 'console.refused_department', field: 'departments' },
  affiliation: { key: 'console.refused_affiliation', field: 'departments' },
  scope_and_whole: { key: 'console.refused_scope_and_whole', field: 'whole' },
  no_scope: { key: 'console.refused_no_scope', field: 'departments' },
  scope_needed: { key: 'console.refused_scope_needed', field: 'departments' },
  name: { key: 'console.refused_token_name', field: 'name' },
  days: { key: 'console.refused_days', field: 'days' },
};

/** A form's scope: departments typed as "eng, sci/phys", affiliations as ticked boxes (one field each: forms carry no lists). */
const departmentsOf = (body: Record<string, unknown>) => (typeof body.departments === 'string' ? body.departments.split(/[\s,、]+/).filter(Boolean) : []);
const affiliationsOf = (body: Record<string, unknown>) => AFFILIATIONS.filter((a) => body[`affiliation_${a}`] === 'yes');
const scopeForm = (body: Record<string, unknown>) => ({ role: body.role, departments: departmentsOf(body), affiliations: affiliationsOf(body), wholeUniversity: body.whole_university === 'yes' });

/**
 * /console/operators (administrators): the API tokens (made with a name, a role, a scope and an
 * expiry, the secret shown once; listed; revoked) and the people with console roles (appointed,
 * withdrawn). All of it through HelpDesk, which checks operator.manage and writes the audit; all of
 * it with a security key shown within CONSOLE_FRESH_SECONDS, since a role here is every account.
 */
export function operatorRoutes(router: Router, deps: ConsoleDeps, session: ConsoleSession): void {
  const desk = deps.helpDesk;

  function scopeText(t: ReturnType<typeof translator>, scope: { departments: readonly string[]; affiliations: readonly string[] }) {
    if (!scope.departments.length && !scope.affiliations.length) return t('console.scope_all');
    return [...scope.departments, ...scope.affiliations.map((a) => t(`affiliation.${a}` as MessageKey))].join(', ');
  }

  const attempts = new FormAttempts(deps.state, 'token', TOKEN_ATTEMPT_SECONDS);

  /** A refused change: the message, and for a form the values typed into it and the id of the field it is about. */
  type Refusal = { error: string; invalid?: string } & Partial<Filled>;

  /** `filled`: a form sent before a step-up, shown again as it was typed. */
  async function page(ctx: Context, who: ConsoleOperator, notice: { newToken?: { name: string; token: string }; done?: MessageKey; refusal?: Refusal; filled?: Filled } = {}, status = 200) {
    const t = translator(ctx.state.locale);
    const { refusal } = notice;
    const filled = notice.filled ?? refusal;
    const when = (d: Date | string | null) => (d ? formatDateTime(ctx.state.locale, d, deps.config.timeZone) : '-');
    const now = deps.clock.now().getTime();
    const [tokens, people] = await Promise.all([desk.listApiTokens(who.principal), desk.listConsoleRoles(who.principal)]);
    session.page(
      ctx,
      who,
      'console-operators',
      'console.operators_title',
      {
        roles: ROLES.map((role) => ({ id: role, label: t(`console.role_${role}` as MessageKey) })),
        personRoles: PERSON_ROLES.map((role) => ({ id: role, label: t(`console.role_${role}` as MessageKey) })),
        affiliations: AFFILIATIONS.map((a) => ({ id: a, label: t(`affiliation.${a}` as MessageKey) })),
        maxDays: OPERATOR_TOKEN_MAX_DAYS,
        defaultDays: OPERATOR_TOKEN_DEFAULT_DAYS,
        people: people.map((p) => ({
          commonId: withRealm(p.common_id, deps.config.realmSuffix),
          withdrawAction: `${PAGE}/people/${p.common_id}/withdraw`,
          name: p.name,
          role: t(`console.role_${p.role}` as MessageKey),
          scope: scopeText(t, p),
          grantedBy: p.granted_by,
        })),
        tokens: tokens.map((k) => {
          const live = !k.revoked_at && !(k.expires_at && new Date(k.expires_at).getTime() <= now);
          return {
            name: k.name,
            role: t(`console.role_${k.role}` as MessageKey),
            scope: scopeText(t, k),
            expires: when(k.expires_at),
            lastUsed: when(k.last_used_at),
            state: t(k.revoked_at ? 'console.token_revoked' : live ? 'console.token_live' : 'console.token_expired'),
            revokeAction: live ? `${PAGE}/tokens/${k.id}/revoke` : null,
          };
        }),
        newToken: notice.newToken ?? null,
        done: notice.done ? t(notice.done) : null,
        error: refusal?.error ?? null,
        invalid: refusal?.invalid,
        // What was typed, into the form refused or sent before a step-up; every new-token form is a new attempt.
        values: { grant: (filled?.form === 'grant' && filled.typed) || {}, token: (filled?.form === 'token' && filled.typed) || {} },
        attempt: await attempts.issue({ actor: who.principal.actor }),
        // A reload, the back button and the language switch ask for the page, never send the form again.
        pageUrl: PAGE,
      },
      status,
    );
  }

  /**
   * The page's operator, with a fresh key; undefined when the answer (a step-up, the 404, a refusal) was
   * sent. `form`: the form posted, whose values a step-up keeps for the page (the buttons carry none).
   */
  async function manager(ctx: Context, posted: boolean, form?: Form): Promise<ConsoleOperator | undefined> {
    const who = posted ? await session.posted(ctx, PAGE) : await session.operator(ctx);
    if (!who) return undefined;
    // Not a permission check of its own (HelpDesk makes it): a page no role but admin can use is not shown.
    if (!may(who.principal, 'operator.manage')) return void session.notFound(ctx);
    const draft = form ? { ...typedIn(ctx.request.body as Record<string, unknown>), form } : undefined;
    return (await session.fresh(ctx, who, PAGE, draft)) ? who : undefined;
  }

  /** What the page says after each change (its `done` query). */
  const DONE = {
    revoked: 'console.done_token_revoked',
    withdrawn: 'console.done_role_withdrawn',
    granted: 'console.done_role_granted',
    token_used: 'console.done_token_used',
  } as const satisfies Record<string, MessageKey>;
  type Outcome = { newToken: { name: string; token: string } } | { done: keyof typeof DONE };

  /**
   * Runs a change, then the page: a new token at once (its secret is never stored), else by a redirect.
   * HelpDesk's and the input's refusals are shown on the page in its language, with `form` as it was typed.
   */
  async function change(ctx: Context, who: ConsoleOperator, work: () => Promise<Outcome>, form?: Form) {
    let outcome: Outcome;
    try {
      outcome = await work();
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      const answer = answerTo(ctx, error);
      const t = translator(ctx.state.locale);
      const named = error.details.problem as OperatorInputProblem;
      const problem = error.code === 'invalid_request' && Object.hasOwn(PROBLEMS, named) ? PROBLEMS[named] : undefined;
      // The rule broken in the page's words (a role by its name here), not the admin API's English.
      const vars = { ...(error.details as Record<string, string | number>), ...(typeof error.details.role === 'string' ? { role: t(`console.role_${error.details.role}` as MessageKey) } : {}) };
      const message = problem ? t(problem.key, vars) : t(answer.message);
      const typed = form ? { form, typed: typedIn(ctx.request.body as Record<string, unknown>), invalid: `${form}-${problem?.field ?? (form === 'grant' ? 'id' : 'name')}` } : {};
      return page(ctx, who, { refusal: { error: message, ...typed } }, answer.status);
    }
    if ('newToken' in outcome) return page(ctx, who, { newToken: outcome.newToken });
    ctx.status = 303;
    ctx.redirect(`${PAGE}?done=${outcome.done}`);
  }

  router.get(PAGE, async (ctx) => {
    const who = await manager(ctx, false);
    if (!who) return;
    const done = typeof ctx.query.done === 'string' && Object.hasOwn(DONE, ctx.query.done) ? DONE[ctx.query.done as keyof typeof DONE] : undefined;
    await page(ctx, who, { done, filled: filledFrom(await session.draft(ctx, who)) });
  });

  router.post(`${PAGE}/tokens`, formBody, async (ctx) => {
    const who = await manager(ctx, true, 'token');
    if (!who) return;
    const b = ctx.request.body as Record<string, unknown>;
    await change(
      ctx,
      who,
      async () => {
        const name = tokenName(b.name);
        const { role, scope } = roleAndScope(scopeForm(b));
        const expiresAt = tokenExpiry(Number(b.days), deps.clock.now());
        // The form's attempt, used up by this one POST: the same form sent again makes no second token.
        const made = await attempts.once(typeof b.attempt === 'string' ? b.attempt : '', { actor: who.principal.actor }, () => desk.createApiToken(who.principal, { name, role, scope, expiresAt }));
        return made ? { newToken: { name, token: made.value } } : { done: 'token_used' };
      },
      'token',
    );
  });

  router.post(`${PAGE}/tokens/:id/revoke`, formBody, async (ctx) => {
    const who = await manager(ctx, true);
    if (!who) return;
    await change(ctx, who, async () => {
      await desk.revokeApiToken(who.principal, apiTokenId(ctx.params.id));
      return { done: 'revoked' };
    });
  });

  router.post(`${PAGE}/people`, formBody, async (ctx) => {
    const who = await manager(ctx, true, 'grant');
    if (!who) return;
    const b = ctx.request.body as Record<string, unknown>;
    await change(
      ctx,
      who,
      async () => {
        const { role, scope } = roleAndScope(scopeForm(b), true);
        const commonId = typeof b.commonId === 'string' ? b.commonId.normalize('NFKC').trim().replace(/@.*$/, '') : '';
        await desk.grantConsoleRole(who.principal, commonId, role, scope);
        return { done: 'granted' };
      },
      'grant',
    );
  });

  router.post(`${PAGE}/people/:commonId/withdraw`, formBody, async (ctx) => {
    const who = await manager(ctx, true);
    if (!who) return;
    await change(ctx, who, async () => {
      await desk.withdrawConsoleRole(who.principal, ctx.params.commonId);
      return { done: 'withdrawn' };
    });
  });
}
