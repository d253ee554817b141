import { createHash } from 'node:crypto';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { parseIdentifier, withRealm } from '../account/common-id.ts';
import type { AccountRow } from '../account/account.store.ts';
import { accountEmails } from '../account/reset-address.ts';
import { revocationReason, revocationTime } from '../account/revocation.ts';
import { localName } from '../client/client-settings.ts';
import { answerTo } from '../http/error-map.ts';
import { formBody } from '../http/form-body.ts';
import type { MessageKey } from '../i18n/en.ts';
import { formatDate, formatDateTime, translator, type Translate } from '../i18n/i18n.ts';
import { renderLetters } from '../letter/letter.ts';
import { may } from '../operator/permissions.ts';
import { passwordExpiry } from '../password/expiry.ts';
import { emailRows } from '../selfservice/email-rows.ts';
import { DomainError } from '../shared/errors.ts';
import { reasonWords } from './reason-words.ts';
import type { ConsoleDeps, ConsoleOperator, ConsoleSession } from './console-session.ts';
import { FormAttempts } from './form-attempt.ts';
import { CONSOLE_SEARCH_LIMIT } from '../config/defaults.ts';

/** Identity documents a counter checks before reissuing a password (what the audit records). */
export const ID_DOCUMENTS = ['student_card', 'staff_card', 'mynumber_card', 'drivers_license', 'passport', 'residence_card', 'other'] as const;

const REASON_MAX = 200;

/**
 * The dangerous actions: each asks on a page of its own for a reason (and what else it needs), and a
 * security key shown within CONSOLE_FRESH_SECONDS, before HelpDesk does it.
 */
const CONFIRMED = {
  reissue: { title: 'console.reissue_title', lead: 'console.reissue_lead', permission: 'account.credentials' },
  'reset-mfa': { title: 'console.reset_mfa_title', lead: 'console.reset_mfa_lead', permission: 'account.credentials' },
  suspend: { title: 'console.suspend_title', lead: 'console.suspend_lead', permission: 'account.status' },
  revoke: { title: 'console.revoke_title', lead: 'console.revoke_lead', permission: 'account.status' },
} as const satisfies Record<string, { title: MessageKey; lead: MessageKey; permission: string }>;
type Confirmed = keyof typeof CONFIRMED;
const isConfirmed = (action: string): action is Confirmed => Object.hasOwn(CONFIRMED, action);

/** The actions made straight from the account page; `done` names the line shown after each. */
const DONE = ['unlocked', 'reactivated', 'lent', 'collected', 'cancelled', 'education_recorded', 'mfa_reset', 'suspended', 'scheduled', 'reissue_used'] as const;
type Done = (typeof DONE)[number];

/**
 * How long a reissue form stays good. Each form carries an attempt that one POST uses up, so a reload
 * of the letter (the browser sends the form again) or a double click issues no second password that
 * would void the letter already printed.
 */
const REISSUE_ATTEMPT_SECONDS = 30 * 60;

/**
 * HelpDesk's refusals of an action on the account page that the page itself explains (the rest are
 * the error page's): the text, and the id of the field the refusal is about.
 */
const ACCOUNT_REFUSALS: Record<string, { key: MessageKey; field?: string }> = {
  // Lending: no token loaded with that serial, or one lent already; collecting: none lent to this account.
  token_unavailable: { key: 'console.token_unavailable', field: 'serial' },
  invalid_serial: { key: 'console.token_unavailable', field: 'serial' },
  token_not_found: { key: 'console.token_not_lent' },
  invalid_date: { key: 'console.education_date_invalid', field: 'passed-on' },
  date_outside_year: { key: 'console.education_date_invalid', field: 'passed-on' },
};

const text = (value: unknown) => (typeof value === 'string' ? value.trim() : '');

/**
 * The help desk's pages: finding an account of the operator's scope, its page, and each task. Every
 * look-up and action goes through HelpDesk, which checks the role and the scope and writes the audit
 * record; an account outside the scope is the same 404 as one that does not exist. The pages only
 * leave out the buttons the role may not use.
 */
export function helpDeskRoutes(router: Router, deps: ConsoleDeps, session: ConsoleSession): void {
  const desk = deps.helpDesk;
  const { config } = deps;
  const accountUrl = (commonId: string) => `/console/accounts/${commonId}`;
  const attempts = new FormAttempts(deps.state, 'reissue', REISSUE_ATTEMPT_SECONDS);

  router.get('/console', async (ctx) => {
    const who = await session.operator(ctx);
    if (!who) return;
    if (!may(who.principal, 'account.read')) {
      if (may(who.principal, 'dashboard.read')) return ctx.redirect('/console/dashboard');
      // No page of the console is this role's (a scoped auditor): say what it may use, and where.
      return session.page(ctx, who, 'console-no-pages', 'console.no_pages_title', {
        role: translator(ctx.state.locale)(`console.role_${who.principal.role}`),
        reads: may(who.principal, 'signins.read'),
      });
    }
    const query = typeof ctx.query.q === 'string' ? ctx.query.q.normalize('NFKC').trim().slice(0, 100) : '';
    // The realm-suffixed form is the Common ID; anything else is the start of one or a part of a name.
    const exact = parseIdentifier(query, config.realmSuffix);
    const found = query ? await desk.search(who.principal, { text: exact ?? query.replace(/@.*$/, ''), limit: CONSOLE_SEARCH_LIMIT }) : [];
    const t = translator(ctx.state.locale);
    session.page(ctx, who, 'console-search', 'console.search_title', {
      query,
      example: withRealm('0123456789', config.realmSuffix),
      searched: query !== '',
      results: found.map((a) => ({
        url: accountUrl(a.common_id),
        commonId: withRealm(a.common_id, config.realmSuffix),
        name: a.name,
        department: a.department ?? '-',
        affiliation: t(`affiliation.${a.affiliation}` as MessageKey),
        status: t(`status.${a.status}` as MessageKey),
      })),
      more: found.length === CONSOLE_SEARCH_LIMIT,
    });
  });

  /** An action refused on the account page: the message, the id of the field it is about, what was typed. */
  type Refusal = { error: string; invalid?: string; typed?: Record<string, string> };

  async function accountPage(ctx: Context, who: ConsoleOperator, commonId: string, notice: { done?: Done; refusal?: Refusal } = {}, status = 200) {
    const t = translator(ctx.state.locale);
    const { account, factors, education, identityLink } = await desk.details(who.principal, commonId);
    const when = (d: Date | string | null) => (d ? formatDateTime(ctx.state.locale, d, config.timeZone) : t('account.never'));
    const expiry = passwordExpiry(account.password_set_at, factors.length > 0, config.passwordExpiry, deps.clock.now());
    const rows: Array<[MessageKey, string]> = [
      ['account.common_id', withRealm(account.common_id, config.realmSuffix)],
      ['account.name', account.name],
      ['account.affiliation', t(`affiliation.${account.affiliation}` as MessageKey)],
      ['console.department', account.department ?? '-'],
      ['account.status', t(`status.${account.status}` as MessageKey)],
      ['account.password_set', when(account.password_set_at)],
      ['account.password_expires', expiry.expiresAt ? when(expiry.expiresAt) : t('account.password_never')],
      ['console.must_change', t(account.must_change_password ? 'console.yes' : 'console.no')],
      ['console.mfa_required', t(account.mfa_required ? 'console.yes' : 'console.no')],
      ['account.education', education.passedOn ? t('account.education_passed', { year: education.year, date: education.passedOn }) : t('account.education_not_taken', { year: education.year })],
      ['account.idv', identityLink ? t('account.idv_linked', { date: when(identityLink.linkedAt) }) : t('account.idv_not_linked')],
      [
        'console.revocation',
        account.revoke_at ? t('console.revocation_on', { date: formatDate(ctx.state.locale, account.revoke_at, config.timeZone), reason: account.revoke_reason ?? '-' }) : t('console.revocation_none'),
      ],
    ];
    const signins = may(who.principal, 'signins.read') ? await desk.signins(who.principal, { commonId: account.common_id, limit: 10 }) : [];
    const systems = new Map<string, string>();
    for (const id of new Set(signins.map((e) => e.client_id).filter((c): c is string => Boolean(c)))) {
      const client = await deps.clients.find(id);
      systems.set(id, client ? localName(ctx.state.locale, client.name, client.name_ja) : id);
    }
    const can = (permission: Parameters<typeof may>[1]) => may(who.principal, permission);
    session.page(
      ctx,
      who,
      'console-account',
      'console.account_title',
      {
        name: account.name,
        rows: rows.map(([label, value]) => ({ label: t(label), value })),
        emails: emailRows(t, accountEmails(account, config), { addLink: false }),
        factors: factors.map((f) => ({ label: f.label, kind: t(`console.kind_${f.kind}` as MessageKey), serial: f.token_serial, since: when(f.created_at) })),
        signins: signins.map((e) => ({
          at: when(e.occurred_at),
          system: e.client_id ? (systems.get(e.client_id) ?? e.client_id) : '-',
          place: e.ip ?? '-',
          result: t(e.result === 'success' ? 'account.signin_success' : 'account.signin_failure'),
          reason: reasonWords(t, e.reason),
        })),
        done: notice.done ? t(`console.done_${notice.done}` as MessageKey) : null,
        error: notice.refusal?.error ?? null,
        invalid: notice.refusal?.invalid,
        values: notice.refusal?.typed ?? {},
        // The page of a refused action's POST: reloaded, or in the other language, it is the account page.
        pageUrl: accountUrl(account.common_id),
        base: accountUrl(account.common_id),
        educationYear: education.passedOn ? null : education.year,
        active: account.status === 'active',
        suspended: account.status === 'suspended',
        scheduled: account.revoke_at !== null,
        revoked: account.status === 'revoked',
        can: { credentials: can('account.credentials'), status: can('account.status'), tokens: can('token.lend'), education: can('education.record') },
      },
      status,
    );
  }

  router.get('/console/accounts/:commonId', async (ctx) => {
    const who = await session.operator(ctx);
    if (!who) return;
    const done = DONE.find((d) => d === ctx.query.done);
    await run(ctx, who, () => accountPage(ctx, who, ctx.params.commonId, { done }), ctx.params.commonId);
  });

  /**
   * Runs a page's work on the account `commonId`; HelpDesk's refusals (not found, out of scope,
   * forbidden, bad input) become the console's error pages, a role's refusal with a link back to the account.
   */
  async function run(ctx: Context, who: ConsoleOperator, work: () => Promise<void>, commonId: string) {
    try {
      await work();
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      session.error(ctx, who, error, undefined, error.code === 'forbidden' ? accountUrl(commonId) : undefined);
    }
  }

  /** The account page again with an error of the action just tried (HelpDesk's bad input, a conflict), and what was typed. */
  async function refused(ctx: Context, who: ConsoleOperator, commonId: string, error: DomainError, typed: Record<string, string>) {
    const answer = answerTo(ctx, error);
    const known = Object.hasOwn(ACCOUNT_REFUSALS, error.code) ? ACCOUNT_REFUSALS[error.code] : undefined;
    // Not found, out of scope, forbidden: the error page (run's).
    if (!known && (answer.status === 404 || answer.status === 403)) throw error;
    const t = translator(ctx.state.locale);
    await accountPage(ctx, who, commonId, { refusal: { error: t(known?.key ?? answer.message), invalid: known?.field, typed } }, known ? 400 : answer.status);
  }

  // The direct actions: no reason asked, nothing lost that cannot be put back; `done` is the line shown after.
  const direct: Record<string, { done: Done; act: (who: ConsoleOperator, commonId: string, body: Record<string, unknown>) => Promise<unknown> }> = {
    unlock: { done: 'unlocked', act: (who, commonId) => desk.unlock(who.principal, commonId) },
    reactivate: { done: 'reactivated', act: (who, commonId, body) => desk.setStatus(who.principal, commonId, 'active', { reason: text(body.reason).slice(0, REASON_MAX) }) },
    lend: { done: 'lent', act: (who, commonId, body) => desk.lendToken(who.principal, text(body.serial), commonId) },
    // Taken back from this account only: a serial lent to someone else is not this page's to collect.
    collect: {
      done: 'collected',
      async act(who, commonId, body) {
        const serial = text(body.serial);
        const { factors } = await desk.details(who.principal, commonId);
        if (!factors.some((f) => f.kind === 'token' && f.token_serial === serial)) throw new DomainError('token_not_found', `no token ${serial} lent to ${commonId}`);
        await desk.collectToken(who.principal, serial);
      },
    },
    'cancel-revocation': { done: 'cancelled', act: (who, commonId) => desk.cancelRevocation(who.principal, commonId) },
    // This year's information-security education, passed on the date given (today when none).
    education: { done: 'education_recorded', act: (who, commonId, body) => desk.recordEducation(who.principal, commonId, text(body.year), text(body.passed_on)) },
  };

  for (const [action, { done, act }] of Object.entries(direct)) {
    router.post(`/console/accounts/:commonId/${action}`, formBody, async (ctx) => {
      const { commonId } = ctx.params;
      const who = await session.posted(ctx, accountUrl(commonId));
      if (!who) return;
      const body = ctx.request.body as Record<string, unknown>;
      try {
        await act(who, commonId, body);
        ctx.status = 303;
        ctx.redirect(`${accountUrl(commonId)}?done=${done}`);
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        // What was typed into the form sent (a collect button's serial is no typing).
        const typed = { serial: action === 'lend' ? text(body.serial) : '', passed_on: text(body.passed_on) };
        await run(ctx, who, () => refused(ctx, who, commonId, error, typed), commonId);
      }
    });
  }

  // The dangerous actions: a confirmation page (GET), then the action (POST), both after a fresh key.
  async function confirmPage(ctx: Context, who: ConsoleOperator, action: Confirmed, commonId: string, values: Record<string, string>, refusal: Refusal | null, status = 200) {
    const account = await desk.account(who.principal, commonId, CONFIRMED[action].permission);
    const t = translator(ctx.state.locale);
    // Every reissue form is a new attempt, also when it comes back with a message.
    const attempt = action === 'reissue' ? await attempts.issue({ commonId: account.common_id, actor: who.principal.actor }) : undefined;
    session.page(
      ctx,
      who,
      'console-confirm',
      CONFIRMED[action].title,
      {
        lead: t(CONFIRMED[action].lead, { name: account.name, commonId: withRealm(account.common_id, config.realmSuffix) }),
        action: `${accountUrl(commonId)}/${action}`,
        backUrl: accountUrl(commonId),
        documents: action === 'reissue' ? ID_DOCUMENTS.map((id) => ({ id, label: t(`console.document_${id}` as MessageKey), selected: values.document === id })) : null,
        dateField: action === 'revoke',
        reasonHint: action === 'revoke' ? t('console.revoke_reason_hint') : null,
        values: { ...values, attempt },
        error: refusal?.error ?? null,
        invalid: refusal?.invalid,
        pageUrl: `${accountUrl(commonId)}/${action}`,
      },
      status,
    );
  }

  router.get('/console/accounts/:commonId/:action', async (ctx) => {
    const { commonId, action } = ctx.params;
    if (!isConfirmed(action)) return session.notFound(ctx);
    const who = await session.operator(ctx);
    if (!who || !(await session.fresh(ctx, who, ctx.path))) return;
    // What was typed before a step-up brought the operator here again (kept by session.fresh).
    const values = await session.draft(ctx, who);
    await run(ctx, who, () => confirmPage(ctx, who, action, commonId, values, null), commonId);
  });

  router.post('/console/accounts/:commonId/:action', formBody, async (ctx) => {
    const { commonId, action } = ctx.params;
    if (!isConfirmed(action)) return session.notFound(ctx);
    const path = `${accountUrl(commonId)}/${action}`;
    const who = await session.posted(ctx, path);
    const body = ctx.request.body as Record<string, unknown>;
    const typed = { reason: text(body.reason), document: text(body.document), on: text(body.on) };
    if (!who || !(await session.fresh(ctx, who, path, typed))) return;
    const values = { ...typed, attempt: text(body.attempt) };
    const t = translator(ctx.state.locale);
    const missing = missingInput(t, action, values);
    if (missing) return run(ctx, who, () => confirmPage(ctx, who, action, commonId, values, missing, 400), commonId);
    await run(
      ctx,
      who,
      async () => {
        try {
          await confirmedAction(ctx, who, action, commonId, values);
        } catch (error) {
          // Bad input HelpDesk found (a reason or date it does not accept): the same page, with the message.
          if (!(error instanceof DomainError) || (error.code !== 'invalid_request' && error.code !== 'already_revoked')) throw error;
          const refusal = error.code === 'already_revoked' ? { error: t('error.conflict') } : { error: t('console.input_refused'), invalid: action === 'revoke' ? 'on' : 'reason' };
          await confirmPage(ctx, who, action, commonId, values, refusal, 400);
        }
      },
      commonId,
    );
  });

  function missingInput(t: Translate, action: Confirmed, values: Record<string, string>): Refusal | null {
    if (!values.reason || values.reason.length > REASON_MAX) return { error: t('console.reason_required'), invalid: 'reason' };
    if (action === 'reissue' && !(ID_DOCUMENTS as readonly string[]).includes(values.document)) return { error: t('console.document_required'), invalid: 'document' };
    if (action === 'revoke' && !/^\d{4}-\d{2}-\d{2}$/.test(values.on)) return { error: t('console.date_required'), invalid: 'on' };
    return null;
  }

  async function confirmedAction(ctx: Context, who: ConsoleOperator, action: Confirmed, commonId: string, values: Record<string, string>) {
    const redirect = (done: Done) => {
      ctx.status = 303;
      ctx.redirect(`${accountUrl(commonId)}?done=${done}`);
    };
    switch (action) {
      case 'reissue': {
        // The form's attempt, used up by this one POST (of parallel ones, exactly one goes on).
        const issued = await attempts.once(values.attempt, { commonId, actor: who.principal.actor }, () =>
          desk.reissuePassword(who.principal, commonId, { reason: values.reason, checked: values.document }),
        );
        if (!issued) return redirect('reissue_used');
        return letterPage(ctx, issued.value.account, issued.value.initialPassword);
      }
      case 'reset-mfa':
        await desk.resetMfa(who.principal, commonId, { reason: values.reason });
        return redirect('mfa_reset');
      case 'suspend':
        await desk.setStatus(who.principal, commonId, 'suspended', { reason: values.reason });
        return redirect('suspended');
      case 'revoke':
        await desk.revoke(who.principal, commonId, { on: revocationTime(values.on, config.timeZone), reason: revocationReason(values.reason) });
        return redirect('scheduled');
    }
  }

  /**
   * The ja/en letter with the new password (src/letter/letter.ts, as the CLI writes it), for the browser
   * to print; shown once and never stored. Its stylesheet is inline (so a saved copy prints the same):
   * this answer's CSP allows that one stylesheet by its hash, and nothing else inline.
   */
  async function letterPage(ctx: Context, account: AccountRow, password: string) {
    const html = await renderLetters(
      [{ name: account.name, commonId: withRealm(account.common_id, config.realmSuffix), password, serverUrl: config.issuer, issuedAt: account.password_set_at, timeZone: config.timeZone }],
      // The console's way on from the letter (not printed).
      { url: accountUrl(account.common_id), label: translator(ctx.state.locale)('console.back_to_account'), lang: ctx.state.locale },
    );
    const inline = /<style>([\s\S]*?)<\/style>/.exec(html)?.[1];
    if (inline !== undefined)
      ctx.set('Content-Security-Policy', ctx.response.get('Content-Security-Policy').replace("style-src 'self'", `style-src 'self' 'sha256-${createHash('sha256').update(inline).digest('base64')}'`));
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = html;
  }
}
