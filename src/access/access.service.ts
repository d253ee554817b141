import type { AccountRow } from '../account/account.store.ts';
import type { ClientRow } from '../client/client.store.ts';
import type { EducationService } from '../education/education.service.ts';
import { evaluateAccess, type AccessDecision } from './access-rules.ts';
import type { AccountRuleStore } from './account-rule.store.ts';

/** Loads what the access rules need for one account at one client and asks them. */
export class AccessService {
  readonly #lists: AccountRuleStore;
  readonly #education: EducationService;

  readonly #salvageOpen: (account: AccountRow) => boolean;

  constructor(deps: { lists: AccountRuleStore; education: EducationService; salvageOpen: (account: AccountRow) => boolean }) {
    this.#lists = deps.lists;
    this.#education = deps.education;
    this.#salvageOpen = deps.salvageOpen;
  }

  async decide(account: AccountRow, client: ClientRow): Promise<AccessDecision> {
    const [listed, passed] = await Promise.all([
      // Only false when the row was read with its rules and there are none (ClientStore.find).
      client.has_account_rules === false ? Promise.resolve(null) : this.#lists.effect(client.client_id, account.common_id),
      client.require_education ? this.#education.passedThisYear(account.id) : Promise.resolve(undefined),
    ]);
    return evaluateAccess(
      { allowedAffiliations: client.allowed_affiliations, allowedStatuses: client.allowed_statuses, requireEducation: client.require_education, salvage: client.salvage },
      { status: account.status, affiliation: account.affiliation, listed, educationPassed: passed !== undefined, salvageOpen: this.#salvageOpen(account) },
    );
  }
}
