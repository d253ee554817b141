import type { AccessService } from '../access/access.service.ts';
import type { DenialReason } from '../access/access-rules.ts';
import type { AccountRow } from '../account/account.store.ts';
import type { ClientRow, ClientStore } from '../client/client.store.ts';

/** The shortest password limit among the systems an account uses (32 characters for UTAS at the reference university), and those systems. */
export interface ShortestLengthLimit {
  max: number;
  systems: ClientRow[];
}

/** Refusals the person ends on their own (this year's education, a second factor): the system is still theirs. */
const OWN_STEPS: ReadonlySet<DenialReason> = new Set(['education_required', 'mfa_required']);

/**
 * Null when no system this account may use limits the length: the advisory concerns only people
 * who would meet the limit. A system counts when its access rules let the account in, or refuse it
 * only until the person does something themselves; one closed to the account by affiliation,
 * department, status or an account list (a students' system, for staff) does not. The rules are
 * the ones that enforce access, so the advisory and the sign-in never disagree.
 */
export async function shortestLengthLimit(clients: ClientStore, access: AccessService, account: AccountRow): Promise<ShortestLengthLimit | null> {
  const limited = await clients.passwordLimitingClients();
  const decisions = await Promise.all(limited.map((client) => access.decide(account, client)));
  const used = limited.filter((_, i) => {
    const decision = decisions[i]!;
    return decision.allowed || OWN_STEPS.has(decision.reason);
  });
  if (used.length === 0) return null;
  const max = used[0]!.max_password_length!;
  return { max, systems: used.filter((client) => client.max_password_length === max) };
}
