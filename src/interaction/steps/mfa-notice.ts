import { formatDate } from '../../i18n/i18n.ts';
import type { Step } from '../step.ts';
import type { StepDeps } from './deps.ts';
import { mfaDemandedHere } from './mfa-common.ts';
import { rolloutPhase } from '../../mfa/rollout.ts';
import { MFA_NOTICE_REMIND_SECONDS } from '../../config/defaults.ts';

const REMIND_AGAIN_AFTER_MS = MFA_NOTICE_REMIND_SECONDS * 1000;

/**
 * Step 4a: the MFA rollout's warning period. People without a second factor are told that MFA
 * becomes required on a date and may set it up now or later ("later" is counted and remembered
 * for a day). Never shown to prompt=none requests: a reminder must not break silent sign-in.
 */
export function mfaNoticeStep(deps: StepDeps): Step {
  return {
    name: 'mfa_notice',
    skipForRevoked: true,
    checks: [
      {
        reason: 'mfa_rollout_warning',
        description: 'MFA will soon be required and the account has no second factor',
        test: (facts, ctx) =>
          facts.account !== undefined &&
          facts.factors.length === 0 &&
          facts.mfaRollout.phase === 'warning' &&
          !mfaDemandedHere(facts, ctx) &&
          !ctx.oidc.prompts.has('none') &&
          (!facts.account.mfa_postponed_at || facts.now.getTime() - new Date(facts.account.mfa_postponed_at).getTime() > REMIND_AGAIN_AFTER_MS),
      },
    ],
    async show(request) {
      const client = await deps.clients.find(String(request.details.params.client_id));
      const { requiredFrom } = rolloutPhase(deps.clock.now(), deps.config.mfaRollout, { warningFrom: client?.mfa_warning_from, requiredFrom: client?.mfa_required_from });
      request.render('mfa-notice', 'mfa.notice_title', {
        date: requiredFrom ? formatDate(request.ctx.state.locale, requiredFrom, deps.config.timeZone) : null,
        setupAction: request.url('setup'),
        laterAction: request.url('later'),
      });
    },
    actions: {
      async setup(request) {
        const account = (await deps.accounts.findById(request.details.session!.accountId))!;
        // Applying for MFA: the enrolment step follows at once.
        await deps.unitOfWork(async () => {
          await deps.accountService.setMfaRequired(account.common_id, true);
          await deps.audit.record({ actor: 'self', action: 'mfa.applied', accountId: account.id, details: { from: 'rollout_notice' } });
        });
        await request.finish({ mfa_notice: {} }, true);
      },
      async later(request) {
        const accountId = request.details.session!.accountId;
        await deps.unitOfWork(async () => {
          await deps.accounts.postponeMfa(accountId, deps.clock.now());
          await deps.audit.record({ actor: 'self', action: 'mfa.postponed', accountId });
        });
        await request.finish({ mfa_notice: {} }, true);
      },
    },
  };
}
