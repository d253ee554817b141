import type { AccountRow } from '../account/account.store.ts';
import type { ClientRow } from '../client/client.store.ts';
import type { EducationService } from '../education/education.service.ts';
import { hasSecondFactor } from '../mfa/assurance.ts';
import { type RolloutDates, rolloutPhase } from '../mfa/rollout.ts';
import type { Clock } from '../shared/clock.ts';
import { type AccessDecision, evaluateAccess } from './access-rules.ts';
import type { AccountRuleStore } from './account-rule.store.ts';

/** What the sign-in behind a token showed: the methods it used (RFC 8176 amr). */
export interface SignInShown {
  amr: readonly string[] | undefined;
}

/**
 * Loads what the access rules need for one account at one client and asks them. Every path that
 * admits an account to a client comes here: the authorization endpoint's steps, the provider's
 * account lookup for anything presenting a token (refresh, userinfo, introspection), the password
 * grant and the service directory.
 */
export class AccessService {
  readonly #lists: AccountRuleStore;
  readonly #education: EducationService;
  readonly #salvageOpen: (account: AccountRow) => boolean;
  readonly #clock: Clock;
  readonly #rollout: RolloutDates;

  constructor(deps: { lists: AccountRuleStore; education: EducationService; salvageOpen: (account: AccountRow) => boolean; clock: Clock; rollout: RolloutDates }) {
    this.#lists = deps.lists;
    this.#education = deps.education;
    this.#salvageOpen = deps.salvageOpen;
    this.#clock = deps.clock;
    this.#rollout = deps.rollout;
  }

  /**
   * `shown` is what the sign-in behind a token showed. It is left out during an authorization,
   * whose MFA steps ask for a second factor rather than refuse.
   */
  async decide(account: AccountRow, client: ClientRow, shown?: SignInShown): Promise<AccessDecision> {
    const [listed, passed] = await Promise.all([
      // Only false when the row was read with its rules and there are none (ClientStore.find).
      client.has_account_rules === false ? Promise.resolve(null) : this.#lists.effect(client.client_id, account.common_id),
      client.require_education ? this.#education.passedThisYear(account.id) : Promise.resolve(undefined),
    ]);
    const requireMfa = client.require_mfa || rolloutPhase(this.#clock.now(), this.#rollout, { warningFrom: client.mfa_warning_from, requiredFrom: client.mfa_required_from }).phase === 'required';
    return evaluateAccess(
      {
        allowedAffiliations: client.allowed_affiliations,
        allowedDepartments: client.allowed_departments,
        allowedStatuses: client.allowed_statuses,
        requireEducation: client.require_education,
        requireMfa,
        salvage: client.salvage,
      },
      {
        status: account.status,
        affiliation: account.affiliation,
        department: account.department,
        listed,
        educationPassed: passed !== undefined,
        salvageOpen: this.#salvageOpen(account),
        accountRequiresMfa: account.mfa_required,
        secondFactor: shown ? hasSecondFactor(shown.amr) : undefined,
      },
    );
  }
}
