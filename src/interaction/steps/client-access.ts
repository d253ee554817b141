import type { DenialReason } from '../../access/access-rules.ts';
import { accessDenied } from '../../audit/signin-reasons.ts';
import { DENIAL_REASON_TEXT, DENIAL_TODO_TEXT, denialDescription } from '../../access/denial-text.ts';
import type { MessageKey } from '../../i18n/en.ts';
import type { Step, StepHandler, StepRequest } from '../step.ts';
import type { StepDeps } from './deps.ts';

/**
 * "You don't have access to this" (error code 53003): the reason in plain words, what to do, and
 * the way back to the relying party (the step's `leave` action, below). The sign-in log records
 * the rule that denied.
 */
export async function showDenial(deps: StepDeps, request: StepRequest, reason: DenialReason): Promise<void> {
  const accountId = request.details.session?.accountId;
  const account = accountId ? await deps.accounts.findById(accountId) : undefined;
  await deps.signinLog.record({
    accountId: account?.id ?? null,
    clientId: String(request.details.params.client_id),
    ip: request.ctx.ip,
    userAgent: request.ctx.get('user-agent') || null,
    result: 'failure',
    reason: accessDenied(reason),
  });
  // A suspended or closed account gets the words for its status.
  const statusText: MessageKey | undefined =
    reason === 'status_not_allowed' && account?.status === 'suspended' ? 'inactive.suspended' : reason === 'status_not_allowed' && account?.status === 'revoked' ? 'inactive.revoked' : undefined;
  const clientName = await request.clientName();
  request.render(
    'access-denied',
    'denied.title',
    {
      clientName,
      reason: request.t(statusText ?? DENIAL_REASON_TEXT[reason], { client: clientName }),
      todo: statusText ? null : request.t(DENIAL_TODO_TEXT[reason]),
      abortAction: request.url('leave'),
      anotherAccountUrl: anotherAccountUrl(deps.config.issuer, request.details.params),
    },
    403,
  );
}

/**
 * "Sign in with another account": the relying party's authorization again, from the account
 * picker (prompt=select_account, which also offers "Use another account"). Hints naming the denied
 * account are left out; everything else (state, nonce, PKCE, redirect) is the relying party's own,
 * so the sign-in ends at the relying party as if the person had chosen the account at first.
 */
function anotherAccountUrl(issuer: string, params: Record<string, unknown>): string {
  const url = new URL(`${issuer}/auth`);
  for (const [name, value] of Object.entries(params)) {
    if (typeof value === 'string' && !['prompt', 'login_hint', 'id_token_hint'].includes(name)) url.searchParams.set(name, value);
  }
  url.searchParams.set('prompt', 'select_account');
  return url.pathname + url.search;
}

/**
 * The way back from the 53003 page. A refusal is not a cancel: the relying party gets
 * access_denied with a description naming the rule, decided again here rather than taken from the
 * form. Should the rules admit the account by now, the authorization carries on through the steps.
 */
export function leaveDenial(deps: StepDeps): StepHandler {
  return async (request) => {
    const decision = await deps.decide(request);
    if (decision?.allowed) return request.finish({});
    await request.finish({ error: 'access_denied', error_description: denialDescription(decision?.reason ?? 'status_not_allowed') });
  };
}

/**
 * Step 1: may this account use this client? The client's rules (allowed affiliations and account
 * statuses, explicit allow and deny lists) are evaluated at every authorization, silent ones too.
 * Education is the security_education step's, since the person can do something about it.
 */
export function clientAccessStep(deps: StepDeps): Step {
  return {
    name: 'client_access',
    checks: [
      {
        reason: 'client_rules_deny',
        description: "the client's access rules deny this account",
        error: 'access_denied',
        test: (facts) => facts.access !== undefined && !facts.access.allowed && facts.access.reason !== 'education_required',
      },
    ],
    async show(request) {
      const facts = await deps.decide(request);
      await showDenial(deps, request, facts && !facts.allowed ? facts.reason : 'status_not_allowed');
    },
    actions: { leave: leaveDenial(deps) },
  };
}
