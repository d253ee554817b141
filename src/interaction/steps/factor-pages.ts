import type { StepRequest } from '../step.ts';
import type { StepDeps } from './deps.ts';
import { methodHost } from './mfa-common.ts';
import { FactorChallenge } from '../methods/factor-challenge.ts';
import { factorMethods } from '../methods/factor-methods.ts';

/** Whose second factor is asked for, and what proving it leads to (`amr`: the method shown). */
export interface FactorSubject {
  accountId: string;
  finish(amr: string): Promise<void>;
}

/**
 * "Verify your identity" in a sign-in: the page and its forms, for the account a session holds
 * (mfa_verify) or the one a password has just proven in the same interaction (login.ts).
 */
export function factorChallengePages(deps: StepDeps) {
  const challenge = new FactorChallenge(deps, factorMethods(deps));
  const host = (request: StepRequest, subject: FactorSubject) => methodHost(request, `signin:${request.uid}`, subject.accountId);

  async function page(request: StepRequest, subject: FactorSubject, error: string | null, status = 200) {
    const data = await challenge.page(host(request, subject), error);
    request.render(
      'mfa-challenge',
      'mfa.verify_title',
      { ...data, lead: request.t('mfa.verify_lead', { client: await request.clientName() }), cantUseUrl: `${request.url()}?help=1`, abortAction: request.url('abort') },
      status,
    );
  }

  /** "I can't use any of these": what else there is (identity verification, the office), and the way back. */
  function cantUsePage(request: StepRequest) {
    request.render('mfa-cant-use', 'mfa.cant_use_title', { idvAction: deps.idv ? request.url('idv') : null, backUrl: request.url() });
  }

  return {
    actionNames: challenge.actionNames,
    show: (request: StepRequest, subject: FactorSubject) => (request.query.help === '1' ? Promise.resolve(cantUsePage(request)) : page(request, subject, null)),
    async act(name: string, request: StepRequest, subject: FactorSubject): Promise<void> {
      const result = await challenge.act(name, host(request, subject));
      if (result.ok) return subject.finish(result.proven.amr);
      await page(request, subject, result.error, result.status);
    },
  };
}
