import { mailedCodeRefusal, sendRefusal } from '../../http/send-refusal.ts';
import type { CheckContext, Facts, Step, StepHandler, StepRequest } from '../step.ts';
import type { StepDeps } from './deps.ts';
import { finishWithFactor, firstFactorDue, methodHost } from './mfa-common.ts';
import { normalizeEmail } from '../../account/recovery-email.ts';
import { isAppPasswordRefusal } from '../../account/app-password.service.ts';
import { normalizeCode } from '../../mfa/totp.ts';
import { errorAnswer } from '../../http/error-map.ts';
import { sha256 } from '../../crypto/tokens.ts';
import { ACCOUNT_CLIENT_ID } from '../../selfservice/account-client.ts';
import { mfaFresh, signedInWithin } from '../../mfa/assurance.ts';
import { FRESH_SIGNIN_SECONDS, OTP_CODE_TTL_SECONDS } from '../../config/defaults.ts';
import { actionsOf, factorMethods, methodsOf } from '../methods/factor-methods.ts';
import type { FactorMethod, MethodResult } from '../methods/method.ts';
import type { PageData } from '../../http/renderer.ts';
import type { MessageKey } from '../../i18n/en.ts';

const ADD_FACTOR_FRESH_SECONDS = FRESH_SIGNIN_SECONDS;

/** The recovery email is a choice of "Add a sign-in method" too, though it never signs anyone in. */
const EMAIL = 'email';

/**
 * A method may be added from the account home after proof given recently in this session: a second
 * factor when the account has one, else the password (the session's sign-in, auth_time). The
 * session alone never suffices: whoever holds a cookie could attach a factor of their own.
 */
function addingAllowed(facts: Facts, ctx: CheckContext): boolean {
  const now = Math.floor(facts.now.getTime() / 1000);
  const session = { amr: ctx.oidc.session?.amr, loginTs: ctx.oidc.session?.loginTs };
  if (facts.factors.length > 0) return mfaFresh(session, ADD_FACTOR_FRESH_SECONDS, now);
  return signedInWithin(session.loginTs, ADD_FACTOR_FRESH_SECONDS, now);
}

interface SetupState {
  /** first: the account had no method when the set-up began (the whole way: method, recovery email, app password); add: one more. */
  mode?: 'first' | 'add';
  setupMethod?: string | null;
  /** The amr of the method proven in this interaction. */
  enrolled?: string | null;
  pendingEmail?: string | null;
  emailSaved?: boolean;
  appPasswordDone?: boolean;
}

/**
 * Step 4: "More information required" (MFA is demanded and the account has no second factor), and
 * "Add a sign-in method" from the security page. One decision per page: which method, then that
 * method's own page; for a first set-up then the recovery email (one the person reads without
 * the university's sign-in, so never prefilled with the university's address), the optional app password, and a finish page. A new secret lives, sealed,
 * in the interaction's server-side state until a valid code confirms it: leaving halfway stores nothing.
 */
export function mfaEnrollmentStep(deps: StepDeps): Step {
  const methods = factorMethods(deps);
  const setupActions = actionsOf(methods, (m) => m.setup);
  const host = (request: StepRequest) => methodHost(request, `enroll:${request.uid}`);
  const accountOf = async (request: StepRequest) => (await deps.accounts.findById(request.details.session!.accountId))!;
  const offered = () => methods.filter((m) => m.available(deps));
  const emailPurpose = (request: StepRequest, email: string) => `enroll-email:${request.uid}:${sha256(email.toLowerCase()).slice(0, 22)}`;

  async function stateOf(request: StepRequest): Promise<SetupState & { mode: 'first' | 'add' }> {
    const state = (await request.state()) as SetupState;
    if (state.mode) return state as SetupState & { mode: 'first' | 'add' };
    const mode = (await deps.mfa.factors(request.details.session!.accountId)).length > 0 ? 'add' : 'first';
    await request.saveState({ mode });
    return { ...state, mode };
  }

  /** "Step 2 of 3" on the pages of a first set-up: the method, the recovery email when mail works, the app password. */
  function progress(state: SetupState & { mode: 'first' | 'add' }, step: number) {
    if (state.mode === 'add') return null;
    return { step, total: deps.recoveryEmail.available ? 3 : 2 };
  }

  const render = (request: StepRequest, view: string, title: MessageKey, data: PageData, error: string | null, status: number) =>
    request.render(view, title, { ...data, error, abortAction: request.url('abort') }, status);

  async function page(request: StepRequest, error: string | null = null, status = 200, shown: { newAppPassword?: { name: string; secret: string } } = {}) {
    const state = await stateOf(request);
    const account = await accountOf(request);
    if (state.enrolled || state.emailSaved) {
      const emailDue = state.mode === 'first' && deps.recoveryEmail.available && !account.recovery_email;
      if (emailDue) return emailPage(request, state, error, status);
      if (state.mode === 'first' && !state.appPasswordDone) {
        return render(
          request,
          'mfa-app-password',
          'mfa.app_password_title',
          { progress: progress(state, deps.recoveryEmail.available ? 3 : 2), action: request.url('app_password'), skipAction: request.url('app_password_skip') },
          error,
          status,
        );
      }
      const kind = state.mode === 'first' ? 'first' : state.emailSaved ? 'email' : 'added';
      return render(
        request,
        'mfa-finish',
        ({ first: 'mfa.finish_title', email: 'mfa.email_saved_title', added: 'mfa.added_title' } as const)[kind],
        { kind, newAppPassword: shown.newAppPassword ?? null, recoveryEmail: account.recovery_email, finishAction: request.url('finish'), servicesUrl: '/services' },
        error,
        status,
      );
    }
    if (state.setupMethod === EMAIL) return emailPage(request, state, error, status);
    const method = offered().find((m) => m.id === state.setupMethod);
    if (method) {
      const data = await method.setup.page(host(request), undefined);
      return render(
        request,
        'mfa-setup',
        'mfa.setup_title',
        { progress: progress(state, 1), method: { view: method.setup.view, name: request.t(method.nameKey), ...data }, chooseAgainAction: request.url('choose_again') },
        error,
        status,
      );
    }
    const factors = await deps.mfa.factors(account.id);
    const choices: Array<{ id: string; name: string; description: string; recommended: boolean }> = offered().map((m) => ({
      id: m.id,
      name: request.t(m.nameKey),
      description: request.t(m.descriptionKey),
      recommended: m.id === 'app',
    }));
    if (state.mode === 'add' && deps.recoveryEmail.available) choices.push({ id: EMAIL, name: request.t('mfa.email_name'), description: request.t('mfa.email_description'), recommended: false });
    render(
      request,
      'mfa-choose',
      state.mode === 'first' ? 'mfa.enroll_title' : 'mfa.add_title',
      {
        first: state.mode === 'first',
        clientName: await request.clientName(),
        current: methodsOf(methods, factors).map((u) => request.t(u.method.nameKey)),
        choices,
        action: request.url('choose'),
      },
      error,
      status,
    );
  }

  function emailPage(request: StepRequest, state: SetupState & { mode: 'first' | 'add' }, error: string | null, status: number) {
    return accountOf(request).then((account) =>
      render(
        request,
        'mfa-recovery-email',
        'mfa.recovery_title',
        {
          progress: progress(state, 2),
          current: account.recovery_email,
          // Not the university's address: a person locked out of the university cannot read it.
          value: state.pendingEmail ?? account.recovery_email ?? '',
          sendAction: request.url('email_send'),
          pending: state.pendingEmail ? { email: state.pendingEmail, confirmAction: request.url('email_confirm') } : null,
          chooseAgainAction: state.mode === 'add' ? request.url('choose_again') : null,
        },
        error,
        status,
      ),
    );
  }

  /** Runs `handler` only at the stage it belongs to; a stale form (another tab, the back button) shows the current page. */
  const at =
    (stage: (state: SetupState) => boolean, handler: (request: StepRequest, state: SetupState & { mode: 'first' | 'add' }) => Promise<void>): StepHandler =>
    async (request) => {
      const state = await stateOf(request);
      if (!stage(state)) return request.reload();
      await handler(request, state);
    };
  const choosing = (state: SetupState) => !state.enrolled && !state.emailSaved;
  const afterMethod = (state: SetupState) => Boolean(state.enrolled || state.emailSaved);
  const emailStage = (state: SetupState) => (state.mode === 'first' ? Boolean(state.enrolled) : state.setupMethod === EMAIL && !state.emailSaved && !state.enrolled);

  async function answered(request: StepRequest, result: MethodResult) {
    if (!result.ok) return page(request, result.error, result.status);
    await request.saveState({ enrolled: result.proven.amr, setupMethod: null });
    await page(request);
  }

  const methodAction = (name: string, method: FactorMethod): StepHandler =>
    at(
      (state) => choosing(state) && state.setupMethod === method.id,
      async (request) => answered(request, await setupActions.get(name)!.action(host(request))),
    );

  return {
    name: 'mfa_enrollment',
    skipForRevoked: true,
    checks: [
      {
        reason: 'mfa_enrollment_required',
        description: 'a second factor is required and the account has none',
        test: firstFactorDue,
      },
      {
        // From the account home's security info: one more method, after a recent second factor (or,
        // for the first one, a recent password).
        reason: 'mfa_factor_added',
        description: 'the person adds a sign-in method from the account home',
        test: (facts, ctx) => facts.client?.client_id === ACCOUNT_CLIENT_ID && ctx.oidc.params?.akamon_add_factor === '1' && ctx.oidc.result?.mfa_enrollment === undefined && addingAllowed(facts, ctx),
      },
    ],
    show: (request) => page(request),
    actions: {
      ...Object.fromEntries([...setupActions].map(([name, { method }]) => [name, methodAction(name, method)])),
      choose: at(choosing, async (request, state) => {
        const chosen = String(request.body.method ?? '');
        const allowed = offered().some((m) => m.id === chosen) || (chosen === EMAIL && state.mode === 'add' && deps.recoveryEmail.available);
        if (!allowed) return page(request, request.t('mfa.choose_one'), 400);
        await request.saveState({ setupMethod: chosen });
        await page(request);
      }),
      choose_again: at(choosing, async (request) => {
        await request.saveState({ setupMethod: null, pendingTotp: null, pendingPhone: null, webauthnChallenge: null, pendingEmail: null });
        await page(request);
      }),
      email_send: at(emailStage, async (request, state) => {
        const email = normalizeEmail(request.body.email);
        if (!email) return emailPage(request, state, request.t('mfa.recovery_invalid'), 400);
        const outcome = await deps.recoveryEmail.sendCode(request.details.session!.accountId, emailPurpose(request, email), email, (code) => ({
          subject: request.t('mail.code_subject', { service: deps.config.issuerName }),
          text: request.t('mail.code_body', { service: deps.config.issuerName, code, minutes: OTP_CODE_TTL_SECONDS / 60 }),
        }));
        if (!outcome.ok) {
          const { error, status } = sendRefusal(request.ctx, request.t, outcome);
          return emailPage(request, state, error, status);
        }
        await request.saveState({ pendingEmail: email });
        await emailPage(request, { ...state, pendingEmail: email }, null, 200);
      }),
      email_confirm: at(emailStage, async (request, state) => {
        if (!state.pendingEmail) return page(request);
        const account = await accountOf(request);
        // The code, the address and the audit record: all or none, so a fault never spends the code on an address not saved.
        const result = await deps.unitOfWork(async () => {
          const checked = await deps.recoveryEmail.confirm(account.id, emailPurpose(request, state.pendingEmail!), state.pendingEmail!, normalizeCode(request.body.code));
          if (checked === 'ok') await deps.audit.record({ actor: 'self', action: account.recovery_email ? 'recovery_email.changed' : 'recovery_email.confirmed', accountId: account.id });
          return checked;
        });
        if (result !== 'ok') {
          const { error, status } = mailedCodeRefusal(request.ctx, request.t, result);
          return emailPage(request, state, error, status);
        }
        await deps.recoveryEmail
          .replaced(account.recovery_email, state.pendingEmail, {
            subject: request.t('mail.email_changed_subject', { service: deps.config.issuerName }),
            text: request.t('mail.email_changed_body', { service: deps.config.issuerName }),
          })
          .catch((error: Error) => request.ctx.state.log.warn({ err: { message: error.message } }, 'recovery email change notice not sent'));
        await request.saveState({ pendingEmail: null, ...(state.mode === 'add' ? { emailSaved: true } : {}) });
        await page(request);
      }),
      app_password: at(afterMethod, async (request) => {
        try {
          const { appPassword, secret } = await deps.appPasswords.create(request.details.session!.accountId, String(request.body.name ?? ''));
          await request.saveState({ appPasswordDone: true });
          await page(request, null, 200, { newAppPassword: { name: appPassword.name, secret } });
        } catch (error) {
          if (!isAppPasswordRefusal(error)) throw error;
          const { message, status } = errorAnswer(error);
          await page(request, request.t(message), status);
        }
      }),
      app_password_skip: at(afterMethod, async (request) => {
        await request.saveState({ appPasswordDone: true });
        await page(request);
      }),
      finish: at(afterMethod, async (request, state) => {
        const account = await accountOf(request);
        // A first set-up includes the recovery email while mail can be sent.
        if (state.mode === 'first' && deps.recoveryEmail.available && !account.recovery_email) return page(request);
        if (state.enrolled) return finishWithFactor(request, 'mfa_enrollment', state.enrolled);
        await request.finish({ mfa_enrollment: {} }, true);
      }),
    },
  };
}
