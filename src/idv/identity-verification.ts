import type { AccountService, InitialPassword } from '../account/account.service.ts';
import type { AccountRow, AccountStore } from '../account/account.store.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Database } from '../db/database.ts';
import type { MfaService } from '../mfa/mfa.service.ts';
import type { Clock } from '../shared/clock.ts';
import type { LoginThrottle, ThrottleRule } from '../throttle/login-throttle.ts';
import type { IdentityLinkRow, IdentityLinkStore } from './identity-link.store.ts';
import { sameName, type VerifiedIdentity } from './upstream.ts';
import { IDV_RECOVERY_THROTTLE } from '../config/defaults.ts';
import { NO_METER, type Meter } from '../metrics/meter.ts';

/** Recoveries of one account: three a day, then a day's wait, so a stolen card cannot churn an account. */
const RECOVERY_RULE: ThrottleRule = IDV_RECOVERY_THROTTLE;

export type Identification = { kind: 'unknown' } | { kind: 'name_mismatch'; account: AccountRow } | { kind: 'found'; account: AccountRow };

export type RecoveryKind = 'password' | 'mfa';
export type RecoveryOutcome = { ok: true; temporaryPassword: string | null } | { ok: false; waitSeconds: number };

/**
 * Identity verification through the upstream provider: pre-linking an account while the person
 * can still sign in, finding the account again from a later verification, and what a verified
 * person may then do (a temporary password, or starting MFA over). Only the pairwise identifier
 * and the name are kept.
 */
export class IdentityVerification {
  readonly #links: IdentityLinkStore;
  readonly #accounts: AccountStore;
  readonly #accountService: AccountService;
  readonly #mfa: MfaService;
  readonly #audit: AuditLog;
  readonly #throttle: LoginThrottle;
  readonly #clock: Clock;
  readonly #salvageDays: number;
  readonly #meter: Meter;
  readonly #unitOfWork: Database['unitOfWork'];

  constructor(deps: {
    links: IdentityLinkStore;
    accounts: AccountStore;
    accountService: AccountService;
    mfa: MfaService;
    audit: AuditLog;
    throttle: LoginThrottle;
    clock: Clock;
    salvageDays: number;
    meter?: Meter;
    /** One transaction for a change and its audit record. */
    unitOfWork: Database['unitOfWork'];
  }) {
    this.#links = deps.links;
    this.#accounts = deps.accounts;
    this.#accountService = deps.accountService;
    this.#mfa = deps.mfa;
    this.#audit = deps.audit;
    this.#throttle = deps.throttle;
    this.#clock = deps.clock;
    this.#salvageDays = deps.salvageDays;
    this.#meter = deps.meter ?? NO_METER;
    this.#unitOfWork = deps.unitOfWork;
  }

  /** A change and its audit record, kept together or not at all. */
  #recorded<T>(change: () => Promise<T>): Promise<T> {
    return this.#unitOfWork(change);
  }

  accountById(accountId: string): Promise<AccountRow | undefined> {
    return this.#accounts.findById(accountId);
  }

  linkOf(accountId: string): Promise<IdentityLinkRow | undefined> {
    return this.#links.forAccount(accountId);
  }

  /** Links the account to the verified identity; false when the identity is another account's. */
  async link(account: AccountRow, identity: VerifiedIdentity): Promise<boolean> {
    const linked = await this.#recorded(async () => {
      const saved = await this.#links.save({ account_id: account.id, issuer: identity.issuer, subject: identity.subject, name: identity.name, linked_at: this.#clock.now() });
      await this.#audit.record({ actor: 'self', action: saved ? 'idv.linked' : 'idv.link_refused', accountId: account.id, details: saved ? {} : { reason: 'linked_to_another_account' } });
      return saved;
    });
    this.#meter.identityVerification(linked ? 'linked' : 'link_refused');
    return linked;
  }

  async unlink(accountId: string, actor: string): Promise<boolean> {
    return this.#recorded(async () => {
      const removed = await this.#links.remove(accountId);
      if (removed) await this.#audit.record({ actor, action: 'idv.unlinked', accountId });
      return removed;
    });
  }

  /** The account linked to a verified identity, if the name still matches the one given at linking. */
  async identify(identity: VerifiedIdentity): Promise<Identification> {
    const found = await this.#identify(identity);
    this.#meter.identityVerification(found.kind);
    return found;
  }

  async #identify(identity: VerifiedIdentity): Promise<Identification> {
    const link = await this.#links.forSubject(identity.issuer, identity.subject);
    const account = link && (await this.#accounts.findById(link.account_id));
    if (!link || !account) return { kind: 'unknown' };
    if (!sameName(link.name, identity.name)) {
      await this.#audit.record({ actor: 'self', action: 'idv.name_mismatch', accountId: account.id });
      return { kind: 'name_mismatch', account };
    }
    return { kind: 'found', account };
  }

  /** A revoked account may still reach salvage clients for a while after its revocation. */
  salvageOpen(account: AccountRow): boolean {
    if (account.status !== 'revoked' || !account.revoked_at || this.#salvageDays === 0) return false;
    return this.#clock.now().getTime() - new Date(account.revoked_at).getTime() < this.#salvageDays * 86_400_000;
  }

  /**
   * What a verified person asked for: (a) a temporary password, shown once and changed at the next
   * sign-in (second factors stay), or (b) every second factor removed, to enrol again at the next
   * sign-in. Either way every session, refresh token and app password of the account ends.
   * `settle` (the verification's end, and what the caller continues with the outcome) is written in
   * the same unit of work as the recovery, or as its refusal: a fault leaves none of it, and the
   * retry recovers.
   */
  async recover(account: AccountRow, kind: RecoveryKind, settle: (outcome: RecoveryOutcome) => Promise<unknown> = async () => undefined): Promise<RecoveryOutcome> {
    // Hashed before the unit: no connection (on PGlite the only one) is held while the hash runs.
    const initial = kind === 'password' ? await this.#accountService.initialPassword() : undefined;
    const outcome = await this.#recorded(async () => {
      const made = await this.#recoverIn(account, initial);
      await settle(made);
      return made;
    });
    this.#meter.identityVerification(!outcome.ok ? 'rate_limited' : initial ? 'password_reissued' : 'mfa_reset');
    return outcome;
  }

  /** The recovery itself, or its refusal when the account's recoveries are used up (inside recover's unit). */
  async #recoverIn(account: AccountRow, initial: InitialPassword | undefined): Promise<RecoveryOutcome> {
    const state = await this.#throttle.countUse([{ key: `idv:recover:${account.id}`, rule: RECOVERY_RULE }]);
    if (state.blocked || state.waitSeconds > 0) return { ok: false, waitSeconds: state.waitSeconds };
    if (initial) {
      await this.#accountService.reissuePassword(account.common_id, initial);
      await this.#audit.record({ actor: 'self', action: 'password.reissued', accountId: account.id, details: { via: 'identity_verification' } });
      return { ok: true, temporaryPassword: initial.password };
    }
    await this.#accountService.recovering(account.id, async () => {
      const removed = await this.#mfa.reset(account.id);
      // The recovery address goes too: whoever held the account may have set theirs, and with the
      // factors gone it alone would reset the password. The set-up at the next sign-in asks again.
      await this.#accounts.clearRecoveryEmail(account.id);
      await this.#accounts.setMfaRequired(account.id, true);
      await this.#audit.record({ actor: 'self', action: 'mfa.reset', accountId: account.id, details: { via: 'identity_verification', removedFactors: removed } });
    });
    return { ok: true, temporaryPassword: null };
  }
}
