import { exceedsLength, policyLimits, type PolicyViolation } from '../../password/password-policy.ts';
import { isDomainError } from '../../http/middleware.ts';
import type { Locale, Translate } from '../../i18n/i18n.ts';
import type { MessageKey } from '../../i18n/en.ts';
import type { Step, StepRequest } from '../step.ts';
import type { StepDeps } from './deps.ts';
import { passwordExpiry } from '../../password/expiry.ts';
import { shortestLengthLimit, type ShortestLengthLimit } from '../../password/length-advice.ts';
import { localName } from '../../client/client-settings.ts';

/** The policy in words, for the page. */
export function policyRules(t: Translate, profile: 'university' | 'nist'): string[] {
  const limits = policyLimits(profile);
  const vars = { min: limits.minLength, max: limits.maxLength, kinds: limits.minKinds };
  return profile === 'university'
    ? [t('policy.university.length', vars), t('policy.university.kinds', vars), t('policy.university.forbidden'), t('policy.common')]
    : [t('policy.nist.length', vars), t('policy.common')];
}

/**
 * The advisory about systems this account uses that accept only shorter passwords (none for an
 * account that uses no such system), for the page: the notice to show, and a warning when a chosen
 * password is longer. The systems are named in the page's language.
 */
export function lengthAdvice(limit: ShortestLengthLimit | null, t: Translate, locale: Locale, length?: number): { longNotice: string | null; longWarning: string | null } {
  if (!limit) return { longNotice: null, longWarning: null };
  const vars = { max: limit.max, systems: limit.systems.map((client) => localName(locale, client.name, client.name_ja)).join(locale === 'ja' ? '、' : ', ') };
  return {
    longNotice: t('password_change.long_notice', vars),
    longWarning: length !== undefined && length > limit.max ? t('password_change.long_warning', { ...vars, length }) : null,
  };
}

/**
 * Step 3: a new password before the person reaches the system, when the current one is an
 * initial (office-issued) password, an expired one, or when the person chose to on the notice.
 * An account with a second factor has shown it first (mfa_verify fires for this step's checks).
 */
export function passwordChangeStep(deps: StepDeps): Step {
  const profile = deps.config.passwordProfile;

  async function accountOf(request: StepRequest) {
    const accountId = request.details.session?.accountId;
    return accountId ? await deps.accounts.findById(accountId) : undefined;
  }
  async function limitOf(account: Awaited<ReturnType<typeof accountOf>>): Promise<ShortestLengthLimit | null> {
    return account ? shortestLengthLimit(deps.clients, deps.access, account) : null;
  }

  async function page(request: StepRequest, errors: string[], rulesBroken: boolean, status: number, length?: number) {
    const account = await accountOf(request);
    const { longNotice, longWarning } = lengthAdvice(await limitOf(account), request.t, request.ctx.state.locale, length);
    const reasons = request.details.prompt.reasons;
    request.render(
      'password-change',
      'password_change.title',
      {
        action: request.url('change'),
        // The account the new password is for, named to the password manager that saves it.
        commonId: account?.common_id ?? '',
        lead: request.t(reasons.includes('initial_password') ? 'password_change.lead_initial' : reasons.includes('password_expired') ? 'password_change.lead_expired' : 'password_change.lead_soon'),
        errors,
        rulesBroken,
        rules: policyRules(request.t, profile),
        longNotice: longWarning ? null : longNotice,
        longWarning,
      },
      status,
    );
  }

  return {
    name: 'password_change',
    skipForRevoked: true,
    checks: [
      {
        reason: 'initial_password',
        description: 'the account still has its initial password',
        test: (facts) => facts.account?.must_change_password === true,
      },
      {
        reason: 'password_expired',
        description: 'the password is older than the password age limit',
        test: (facts) => facts.account !== undefined && passwordExpiry(facts.account.password_set_at, facts.factors.length > 0, deps.config.passwordExpiry, facts.now).expired,
      },
      {
        reason: 'password_change_chosen',
        description: 'the person chose to change the password on the expiry notice',
        test: (_facts, ctx) => (ctx.oidc.result?.password_expiry_notice as { change?: boolean } | undefined)?.change === true,
      },
    ],
    show: (request) => page(request, [], false, 200),
    actions: {
      async change(request) {
        const accountId = request.details.session?.accountId;
        if (!accountId) return request.reload();
        const field = (name: string) => (typeof request.body[name] === 'string' ? (request.body[name] as string) : '');
        const next = field('new');
        const limit = await limitOf(await accountOf(request));
        if (limit && exceedsLength(next, limit.max) && request.body.acknowledge_length !== 'yes') {
          return page(request, [], false, 400, [...next.normalize('NFC')].length);
        }
        try {
          await deps.accountService.changePassword(accountId, field('current'), next, field('confirm'), () =>
            deps.audit.record({ actor: 'self', action: 'password.changed', accountId, details: { reason: request.details.prompt.reasons[0] } }),
          );
        } catch (error) {
          if (!isDomainError(error)) throw error;
          if (error.code === 'password_policy') {
            const { violations, limits: l } = error.details as { violations: PolicyViolation[]; limits: { minLength: number; maxLength: number; minKinds: number } };
            const vars = { min: l.minLength, max: l.maxLength, kinds: l.minKinds };
            return page(
              request,
              violations.map((v) => request.t(`violation.${v}` as MessageKey, vars)),
              true,
              400,
            );
          }
          const messages: Record<string, MessageKey> = {
            password_mismatch: 'password_change.mismatch',
            wrong_current_password: 'password_change.wrong_current',
          };
          if (error.code === 'locked') {
            return page(request, [request.t('password.locked', { minutes: Math.ceil(Number(error.details.waitSeconds) / 60) })], false, 429);
          }
          if (!messages[error.code]) throw error;
          return page(request, [request.t(messages[error.code])], false, 400);
        }
        await request.finish({ password_change: {}, password_expiry_notice: { change: false } }, true);
      },
    },
  };
}
