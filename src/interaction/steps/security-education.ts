import type { Step } from '../step.ts';
import type { StepDeps } from './deps.ts';
import { leaveDenial, showDenial } from './client-access.ts';

/**
 * Step 5: the client requires this academic year's information-security education and the
 * account has not passed it. The page says so (53003) and how to take it; with prompt=none the
 * relying party gets interaction_required, since the person can fix it and come back.
 */
export function securityEducationStep(deps: StepDeps): Step {
  return {
    name: 'security_education',
    checks: [
      {
        reason: 'education_not_passed',
        description: "this academic year's security education is required and not passed",
        test: (facts) => facts.access !== undefined && !facts.access.allowed && facts.access.reason === 'education_required',
      },
    ],
    show: (request) => showDenial(deps, request, 'education_required'),
    actions: { leave: leaveDenial(deps) },
  };
}
