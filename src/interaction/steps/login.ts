import type { InteractionResults } from 'oidc-provider';
import { ACR_MFA, ACR_PASSWORD, signedInWithin } from '../../mfa/assurance.ts';
import { FRESH_SIGNIN_SECONDS } from '../../config/defaults.ts';
import type { AccountRow } from '../../account/account.store.ts';
import { parseIdentifier, withRealm } from '../../account/common-id.ts';
import { SIGN_IN_RESULT, signInResult } from '../../shared/sign-in-result.ts';
import type { Step, StepHandler, StepRequest } from '../step.ts';
import type { StepDeps } from './deps.ts';
import { factorChallengePages, type FactorSubject } from './factor-pages.ts';
import { finishWithFactor, firstFactorDue } from './mfa-common.ts';

/** A password's result, as the password step would finish the interaction with it. */
type PasswordResult = InteractionResults & { [SIGN_IN_RESULT]: { at: number }; login: { accountId: string; acr: string; amr: string[]; remember: boolean } };

/**
 * Whether "Verify your identity" is the step that will come next once `result` signs `account` in
 * (policy.ts): then the password step asks for the factor itself.
 */
export type FactorNext = (request: StepRequest, account: AccountRow, result: PasswordResult) => Promise<boolean>;

/** Where the password step keeps its result while it asks for the second factor, with the Common ID it proved. */
const PASSWORD_RESULT = 'passwordResult';

/** The saved result, while the interaction is still about the Common ID it proved (another identifier, typed, picked or verified, leaves it behind). */
function passwordResultOf(state: Record<string, unknown>): PasswordResult | undefined {
  const saved = state[PASSWORD_RESULT] as { commonId: string; result: PasswordResult } | null | undefined;
  return saved && saved.commonId === state.identifier ? saved.result : undefined;
}

/**
 * Step 0 and 1: choosing an account and proving it with a password. `login` is oidc-provider's
 * built-in prompt (no session, max_age, prompt=login, id_token_hint ...); `select_account` runs
 * when the relying party asks for it and shows the account picker first.
 *
 * When the second factor is what comes next (`factorNext`), the password step asks for it on its
 * own page rather than finishing: the interaction then finishes once, with both, and the browser
 * makes one trip through the provider's resume instead of two. The provider's checks still run at
 * that resume and decide, as after every step. Until the factor is shown there is no session:
 * leaving halfway signs nobody in.
 */
function signInPages(deps: StepDeps, pickerFirst: boolean, factorNext: FactorNext) {
  const factor = factorChallengePages(deps);
  /** The proven account's factor; proving it finishes with the password's result and the factor's method. */
  const factorOf = (request: StepRequest, proven: PasswordResult): FactorSubject => ({
    accountId: proven.login.accountId,
    finish: (amr) => finishWithFactor(request, 'mfa_verify', amr, proven),
  });
  /**
   * The saved password result, while it still stands: its account's sessions were not ended (a
   * sign-out everywhere, a new password, a suspension) since, by the rule that keeps a session
   * written back after such an ending dead (begunAfterSessionsEnded: whole seconds, a password of
   * the ending's own second counts as after it). A result that no longer stands is forgotten: the
   * password is asked again. Read with the account's factors, which the factor's page and forms then use.
   */
  async function standing(request: StepRequest, state: Record<string, unknown>): Promise<PasswordResult | undefined> {
    const proven = passwordResultOf(state);
    if (!proven) return undefined;
    const endedAt = (await deps.mfa.accountWithFactors(proven.login.accountId))?.account.sessions_ended_at;
    if (endedAt === null || (endedAt !== undefined && proven[SIGN_IN_RESULT].at >= Math.floor(new Date(endedAt).getTime() / 1000))) return proven;
    await request.saveState({ [PASSWORD_RESULT]: null });
    return undefined;
  }

  /** A form of the factor's page: only after a password here that still stands (otherwise back to the page, which asks for it). */
  const factorAction =
    (name: string): StepHandler =>
    async (request) => {
      const proven = await standing(request, await request.state());
      if (!proven) return request.reload();
      await factor.act(name, request, factorOf(request, proven));
    };

  const realmHint = (request: StepRequest) => request.t('identifier.hint', { realm: deps.config.realmSuffix ? request.t('identifier.hint_realm', { realm: deps.config.realmSuffix }) : '' });

  const identifierPage = async (request: StepRequest, value: string, error: string | null, status = 200) =>
    request.render(
      'identifier',
      'identifier.title',
      { clientName: await request.clientName(), action: request.url('identifier'), value, error, hint: realmHint(request), idvAction: idvAction(request) },
      status,
    );

  const passwordPage = async (request: StepRequest, commonId: string, error: string | null, status = 200) =>
    request.render(
      'password',
      'password.title',
      {
        clientName: await request.clientName(),
        action: request.url('password'),
        commonId: withRealm(commonId, deps.config.realmSuffix),
        switchUrl: `${request.url()}?account=other`,
        error,
        idvAction: idvAction(request),
      },
      status,
    );

  // "Verify your identity with your ID card", when an identity provider is configured.
  const idvAction = (request: StepRequest) => (deps.idv ? request.url('idv') : null);

  const inactivePage = async (request: StepRequest, message: string, salvage: boolean) =>
    request.render(
      'inactive',
      'inactive.title',
      {
        clientName: await request.clientName(),
        message,
        abortAction: request.url('abort'),
        idvAction: salvage ? idvAction(request) : null,
      },
      403,
    );

  /**
   * Back from identity verification with a closed (revoked) account: a salvage client lets it in
   * during the salvage period, with `idv` as its method; everywhere else it is refused.
   */
  async function salvage(request: StepRequest, accountId: string): Promise<void> {
    // The verification's result is used once, also by two requests that arrive together.
    if (!(await request.swapState({ idvAccountId: accountId }, { idvAccountId: null }))) return request.reload();
    const clientId = String(request.details.params.client_id);
    const [account, client] = await Promise.all([deps.accounts.findById(accountId), deps.clients.find(clientId)]);
    const open = account && client?.salvage && deps.idv?.verification.salvageOpen(account);
    await deps.signinLog.record({
      accountId,
      clientId,
      ip: request.ctx.ip,
      userAgent: request.ctx.get('user-agent') || null,
      result: open ? 'success' : 'failure',
      reason: open ? 'salvage' : 'salvage_refused',
    });
    if (!open) return inactivePage(request, request.t(client?.salvage ? 'idv.salvage_over' : 'idv.salvage_elsewhere'), false);
    return request.finish({ ...signInResult(), login: { accountId, acr: ACR_MFA, amr: ['idv'], remember: false } });
  }

  async function sessionCommonId(request: StepRequest): Promise<string | undefined> {
    const accountId = request.details.session?.accountId;
    return accountId ? (await deps.accounts.findById(accountId))?.common_id : undefined;
  }

  async function pickerPage(request: StepRequest): Promise<boolean> {
    const known = deps.knownAccounts.read(request.ctx);
    if (known.length === 0) return false;
    const current = await sessionCommonId(request);
    const rows = await deps.accounts.findManyByCommonIds(known);
    const accounts = known.flatMap((id) => {
      const row = rows.find((r) => r.common_id === id);
      return row ? [{ commonId: withRealm(id, deps.config.realmSuffix), name: row.name, signedIn: id === current }] : [];
    });
    if (accounts.length === 0) return false;
    request.render('picker', 'picker.title', { clientName: await request.clientName(), action: request.url('select'), accounts });
    return true;
  }

  async function show(request: StepRequest): Promise<void> {
    if (request.query.account === 'other') return identifierPage(request, '', null);
    const state = await request.state();
    if (typeof state.idvAccountId === 'string') return salvage(request, state.idvAccountId);
    const proven = await standing(request, state);
    if (proven) return factor.show(request, factorOf(request, proven));
    if (typeof state.identifier === 'string') return passwordPage(request, state.identifier, null);
    const reasons = request.details.prompt.reasons;
    // Re-authentication of the signed-in person (max_age, prompt=login, a first factor): straight to the password.
    if (!pickerFirst && (reasons.includes('max_age') || reasons.includes('login_prompt') || reasons.includes(PASSWORD_BEFORE_FIRST_FACTOR))) {
      const current = await sessionCommonId(request);
      if (current) {
        await request.saveState({ identifier: current });
        return passwordPage(request, current, null);
      }
    }
    const hint = typeof request.details.params.login_hint === 'string' ? request.details.params.login_hint.slice(0, 256) : '';
    if ((pickerFirst || !hint) && (await pickerPage(request))) return;
    return identifierPage(request, parseIdentifier(hint, deps.config.realmSuffix) ?? '', null);
  }

  /**
   * The identifier (typed, or picked from the account picker) answers with the password page
   * itself rather than 303 and a GET: one request less per sign-in, as the right password answers
   * with the factor's page. The page moves the browser's address back to the interaction's own
   * (StepRequest.render), so a reload shows the pending step again and sends no form.
   */
  async function identifier(request: StepRequest): Promise<void> {
    const raw = typeof request.body.identifier === 'string' ? request.body.identifier : '';
    const commonId = parseIdentifier(raw, deps.config.realmSuffix);
    if (!commonId) return identifierPage(request, raw.slice(0, 256), request.t('identifier.invalid'), 400);
    await request.saveState({ identifier: commonId });
    await passwordPage(request, commonId, null);
  }

  async function select(request: StepRequest): Promise<void> {
    const choice = request.body.account;
    if (choice === 'other' || typeof choice !== 'string') return request.reload('account=other');
    const commonId = parseIdentifier(choice, deps.config.realmSuffix);
    if (!commonId) return request.reload('account=other');
    // The person picked the account already signed in here: nothing to prove again.
    if (pickerFirst && commonId === (await sessionCommonId(request))) return request.finish({ select_account: {} }, true);
    await request.saveState({ identifier: commonId });
    await passwordPage(request, commonId, null);
  }

  async function password(request: StepRequest): Promise<void> {
    const state = await request.state();
    // Sent again once the password was right (a double click): its factor is being asked for.
    if (typeof state.identifier !== 'string' || passwordResultOf(state)) return request.reload();
    const commonId = state.identifier;
    const outcome = await deps.passwordSignin.signIn({
      commonId,
      password: typeof request.body.password === 'string' ? request.body.password : '',
      ip: request.ctx.ip,
      userAgent: request.ctx.get('user-agent') || null,
      clientId: String(request.details.params.client_id),
    });
    const signInAs = async (account: AccountRow) => {
      deps.knownAccounts.remember(request.ctx, commonId);
      const result: PasswordResult = {
        ...(pickerFirst ? { select_account: {} } : {}),
        ...signInResult(),
        login: { accountId: account.id, acr: ACR_PASSWORD, amr: ['pwd'], remember: true },
      };
      if (!(await factorNext(request, account, result))) return request.finish(result);
      await request.saveState({ [PASSWORD_RESULT]: { commonId, result } });
      await factor.show(request, factorOf(request, result));
    };
    if (outcome.ok) return signInAs(outcome.account);
    switch (outcome.reason) {
      case 'invalid_credentials':
        return passwordPage(request, commonId, request.t('password.invalid'), 401);
      case 'locked':
        request.ctx.set('Retry-After', String(outcome.waitSeconds));
        return passwordPage(request, commonId, request.t('password.locked', { minutes: Math.ceil(outcome.waitSeconds / 60) }), 429);
      case 'blocked':
        return passwordPage(request, commonId, request.t('password.blocked'), 429);
      default: {
        // The right password for a suspended or closed account: only a client whose rules admit
        // that status (a data-export service, say) lets it in; elsewhere say so plainly, then send
        // the person back to the relying party with access_denied.
        const client = await deps.clients.find(String(request.details.params.client_id));
        if (client?.allowed_statuses.includes(outcome.account.status)) return signInAs(outcome.account);
        // At a salvage client a closed account is offered identity verification instead.
        const salvageHere = outcome.reason === 'account_revoked' && client?.salvage === true;
        return inactivePage(request, request.t(outcome.reason === 'account_suspended' ? 'inactive.suspended' : salvageHere ? 'idv.salvage_offer' : 'inactive.revoked'), salvageHere);
      }
    }
  }

  const own: Record<string, StepHandler> = { identifier, select, password, idv: startIdentityVerification(deps) };
  const factorActions = Object.fromEntries(factor.actionNames.map((name) => [name, factorAction(name)]));
  if (Object.keys(own).some((name) => Object.hasOwn(factorActions, name))) throw new Error('a factor form is named like a sign-in form');
  return { show, actions: { ...own, ...factorActions } };
}

const PASSWORD_BEFORE_FIRST_FACTOR = 'password_before_first_factor';

export function loginStep(deps: StepDeps, factorNext: FactorNext): Step {
  // An essential acr in the claims parameter is met by mfa_verify (a second factor), not by
  // asking for the password again, which oidc-provider's own checks would do forever.
  return {
    name: 'login',
    builtIn: true,
    replacesChecks: ['essential_acr', 'essential_acrs'],
    checks: [
      {
        // Whoever holds a session cookie could otherwise attach a factor of their own (and then a
        // recovery address) to an account that has none: as on the account home, the first factor
        // needs the password shown recently in this session.
        reason: PASSWORD_BEFORE_FIRST_FACTOR,
        description: 'a first second factor is to be set up and the session signed in too long ago',
        // loginTs is the provider's own clock, so the age is counted on it.
        test: (facts, ctx) => facts.account?.status !== 'revoked' && firstFactorDue(facts, ctx) && !signedInWithin(ctx.oidc.session?.loginTs, FRESH_SIGNIN_SECONDS, Math.floor(Date.now() / 1000)),
      },
    ],
    ...signInPages(deps, false, factorNext),
  };
}

export function selectAccountStep(deps: StepDeps, factorNext: FactorNext): Step {
  return { name: 'select_account', requestable: true, checks: [], ...signInPages(deps, true, factorNext) };
}

/**
 * "Verify your identity with your ID card" from a sign-in page: the verification comes back to this
 * interaction (a recovered account continues its sign-in; a closed one may be let in to salvage data).
 */
export function startIdentityVerification(deps: StepDeps): StepHandler {
  return async (request) => {
    if (!deps.idv) return request.reload();
    await deps.idv.flow.begin(request.ctx, 'recover', { uid: request.uid });
  };
}
