import { formatDate } from '../../i18n/i18n.ts';
import { passwordExpiry } from '../../password/expiry.ts';
import type { Step } from '../step.ts';
import type { StepDeps } from './deps.ts';

/**
 * Step 3a: the password of an account without MFA expires within the notice period. The person
 * may change it now (the password_change step follows) or continue. Never shown to prompt=none.
 */
export function passwordExpiryNoticeStep(deps: StepDeps): Step {
  return {
    name: 'password_expiry_notice',
    skipForRevoked: true,
    checks: [
      {
        reason: 'password_expiring_soon',
        description: 'the password expires soon',
        test: (facts, ctx) =>
          facts.account !== undefined &&
          !ctx.oidc.prompts.has('none') &&
          ctx.oidc.result?.password_expiry_notice === undefined &&
          passwordExpiry(facts.account.password_set_at, facts.factors.length > 0, deps.config.passwordExpiry, facts.now).expiringSoon,
      },
    ],
    async show(request) {
      const account = (await deps.accounts.findById(request.details.session!.accountId))!;
      const { expiresAt } = passwordExpiry(account.password_set_at, (await deps.mfa.factors(account.id)).length > 0, deps.config.passwordExpiry, deps.clock.now());
      request.render('password-expiry-notice', 'password_expiry.title', {
        date: formatDate(request.ctx.state.locale, expiresAt!, deps.config.timeZone),
        changeAction: request.url('change'),
        continueAction: request.url('continue'),
      });
    },
    actions: {
      change: (request) => request.finish({ password_expiry_notice: { change: true } }, true),
      continue: (request) => request.finish({ password_expiry_notice: { change: false } }, true),
    },
  };
}
