import type { Database } from '../db/database.ts';
import type { AccountStatus } from '../db/schema.ts';
import { DomainError } from '../shared/errors.ts';
import { excerpt } from '../shared/text.ts';
import { checkPassword, type PolicyProfile } from '../password/password-policy.ts';
import { generateInitialPassword } from '../password/initial-password.ts';
import type { PasswordHasher } from '../password/password-hasher.ts';
import type { AccountRow, AccountStore } from './account.store.ts';
import type { AppPasswordService } from './app-password.service.ts';
import { COMMON_ID_PATTERN } from './common-id.ts';
import { asTyped } from './password-signin.ts';
import { accountKey, ACCOUNT_RULE, type LoginThrottle } from '../throttle/login-throttle.ts';
import { ACCOUNT_FIELD_KEYS, readProfile } from './account-fields.ts';
import { type AccountInput, type CoreField, validateAccountInput, validateCoreChanges } from './account-input.ts';

/** The core fields a change may name, and their columns. */
const CORE_COLUMNS = { name: 'name', email: 'email', affiliation: 'affiliation', externalId: 'external_id' } as const satisfies Record<CoreField, string>;
export type { CoreField } from './account-input.ts';

// Where they have always been imported from; the checks live in account-input.ts.
export { AFFILIATIONS, validateAccountInput, type AccountInput } from './account-input.ts';

/** The one answer for an account that is not there (or, to a scoped operator, not theirs to see). */
export function accountNotFound(commonId: string): DomainError {
  return new DomainError('account_not_found', `no account with Common ID ${excerpt(commonId)}`);
}

export const STATUSES: readonly AccountStatus[] = ['active', 'suspended', 'revoked'];

/** Ends sessions and tokens of an account; implemented next to the provider's storage. */
export interface SessionRevoker {
  revokeAccount(accountId: string): Promise<number>;
}

/** An initial password and its argon2 hash, made before the account they are for. */
export interface InitialPassword {
  password: string;
  hash: string;
}

export class AccountService {
  readonly #store: AccountStore;
  readonly #hasher: PasswordHasher;
  readonly #profile: PolicyProfile;
  readonly #sessions: SessionRevoker;
  readonly #throttle: LoginThrottle;
  readonly #unitOfWork: Database['unitOfWork'];
  readonly #appPasswords: Pick<AppPasswordService, 'revokeAll'>;

  constructor(deps: {
    store: AccountStore;
    hasher: PasswordHasher;
    profile: PolicyProfile;
    sessions: SessionRevoker;
    throttle: LoginThrottle;
    unitOfWork: Database['unitOfWork'];
    appPasswords: Pick<AppPasswordService, 'revokeAll'>;
  }) {
    this.#store = deps.store;
    this.#hasher = deps.hasher;
    this.#profile = deps.profile;
    this.#sessions = deps.sessions;
    this.#throttle = deps.throttle;
    this.#unitOfWork = deps.unitOfWork;
    this.#appPasswords = deps.appPasswords;
  }

  /**
   * A change that must end every session of the account (a new password, a suspension, a reset of
   * its second factors): the change and the end of the sessions land together or not at all, so
   * that a fault between them never leaves the old sessions of a changed account alive. The
   * sessions end first: their rows, then the account's, the order in which an account-home change
   * holding its session locks them (home-session.ts whileLive), so the two never deadlock. Hashing
   * comes before it, never inside. `change` learns how many provider rows ended (for its audit
   * record, which belongs in it); so does the caller.
   */
  endingSessions(accountId: string, change: (ended: number) => Promise<unknown>, clearThrottleOf?: string): Promise<number> {
    return this.#unitOfWork(async () => {
      const ended = await this.#sessions.revokeAccount(accountId);
      await change(ended);
      if (clearThrottleOf) await this.#throttle.clear(accountKey(clearThrottleOf));
      return ended;
    });
  }

  /**
   * A recovery of an account someone else may have had (a password reset, a reissue at the help
   * desk, an ID-card recovery): as endingSessions, and its app passwords end too, since whoever had
   * the account could have made one that outlasts every session.
   */
  recovering(accountId: string, change: () => Promise<unknown>, clearThrottleOf?: string): Promise<number> {
    return this.endingSessions(
      accountId,
      async () => {
        await change();
        await this.#appPasswords.revokeAll(accountId);
      },
      clearThrottleOf,
    );
  }

  /**
   * A new initial password with its hash. A create inside a transaction (SCIM) makes it first, so
   * that no connection (on PGlite the only one) is held while the hash waits and runs.
   */
  async initialPassword(): Promise<InitialPassword> {
    const password = generateInitialPassword(this.#profile);
    return { password, hash: await this.#hasher.hash(password) };
  }

  /** Creates an account with a generated initial password, returned once and never stored in clear. */
  async create(input: AccountInput, initial?: InitialPassword): Promise<{ account: AccountRow; initialPassword: string }> {
    const valid = validateAccountInput(input);
    const { password, hash } = initial ?? (await this.initialPassword());
    const account = await this.#store.insert({ ...valid, passwordHash: hash });
    if (!account) throw new DomainError('account_exists', `an account with Common ID ${valid.commonId} already exists`);
    return { account, initialPassword: password };
  }

  async get(commonId: string): Promise<AccountRow> {
    const account = COMMON_ID_PATTERN.test(commonId) ? await this.#store.findByCommonId(commonId) : undefined;
    if (!account) throw accountNotFound(commonId);
    return account;
  }

  /**
   * Changes the fields of account-fields.ts that `changes` names (admin API names); the others
   * stay. Access rules see a new department at the account's next request, on every path.
   */
  async updateProfile(commonId: string, changes: Readonly<Record<string, unknown>>): Promise<{ account: AccountRow; changed: string[] }> {
    const account = await this.get(commonId);
    const values = readProfile(changes);
    const changed = Object.keys(changes).filter((key) => ACCOUNT_FIELD_KEYS.has(key));
    if (changed.length === 0) throw new DomainError('invalid_request', `say what to change: ${[...ACCOUNT_FIELD_KEYS].join(', ')}`);
    return { account: await this.#store.updateProfile(account.id, values), changed };
  }

  /**
   * Changes the core fields `changes` names (name, email, affiliation, externalId: the feeding
   * system's own), by the rules of a create; the others stay. All are checked before any is written.
   */
  async updateCore(commonId: string, changes: Partial<Record<CoreField, unknown>>): Promise<{ account: AccountRow; changed: CoreField[] }> {
    const account = await this.get(commonId);
    const valid = validateCoreChanges(changes);
    const changed = Object.keys(valid) as CoreField[];
    if (changed.length === 0) throw new DomainError('invalid_request', `say what to change: ${Object.keys(CORE_COLUMNS).join(', ')}`);
    return { account: await this.#store.updateCore(account.id, Object.fromEntries(changed.map((key) => [CORE_COLUMNS[key], valid[key]]))), changed };
  }

  /**
   * A new initial password after the help desk checked the person; every session ends. `initial`
   * is made beforehand (initialPassword), never here: the caller's unit of work, which holds a
   * connection, is open.
   */
  async reissuePassword(commonId: string, initial: InitialPassword): Promise<{ account: AccountRow; initialPassword: string }> {
    const account = await this.get(commonId);
    const { password, hash } = initial;
    await this.recovering(account.id, () => this.#store.setPassword(account.id, hash, true), account.common_id);
    return { account: (await this.#store.findById(account.id))!, initialPassword: password };
  }

  async setStatus(commonId: string, status: AccountStatus, reason: string | null = null): Promise<AccountRow> {
    const account = await this.get(commonId);
    if (status === 'active') await this.#store.setStatus(account.id, status, reason);
    else await this.endingSessions(account.id, () => this.#store.setStatus(account.id, status, reason));
    return (await this.#store.findById(account.id))!;
  }

  /** Turns MFA on (the person applied, or an operator requires it) or off (operators only). */
  async setMfaRequired(commonId: string, required: boolean): Promise<AccountRow> {
    const account = await this.get(commonId);
    await this.#store.setMfaRequired(account.id, required);
    return (await this.#store.findById(account.id))!;
  }

  async unlock(commonId: string): Promise<AccountRow> {
    const account = await this.get(commonId);
    await this.#throttle.clear(accountKey(account.common_id));
    return account;
  }

  /**
   * A new password after a verified recovery (no current password to show); every rule applies.
   * `alongside` (the audit record) lands with it or not at all.
   */
  async resetPassword(accountId: string, next: string, confirm: string, alongside?: () => Promise<unknown>): Promise<void> {
    const account = await this.#store.findById(accountId);
    if (!account) throw new DomainError('account_not_found', 'no such account');
    if (typeof next !== 'string' || next !== confirm) throw new DomainError('password_mismatch', 'the new password and its confirmation differ');
    const policy = checkPassword(next, { profile: this.#profile, commonId: account.common_id });
    if (!policy.ok) throw new DomainError('password_policy', 'the new password breaks the password rules', { violations: policy.violations, limits: policy.limits });
    const hash = await this.#hasher.hash(next);
    await this.recovering(
      account.id,
      async () => {
        await this.#store.setPassword(account.id, hash, false);
        await alongside?.();
      },
      account.common_id,
    );
  }

  /**
   * Changes the password of a signed-in person. Every policy rule broken is reported at once
   * (code password_policy, details.violations). `alongside` (the audit record) lands with it or not at all.
   */
  async changePassword(accountId: string, current: string, next: string, confirm: string, alongside?: () => Promise<unknown>): Promise<void> {
    const account = await this.#store.findById(accountId);
    if (!account) throw new DomainError('account_not_found', 'no such account');
    if (typeof current !== 'string' || typeof next !== 'string' || next !== confirm) {
      throw new DomainError('password_mismatch', 'the new password and its confirmation differ');
    }
    // The current password is a guessable secret too: the same limits as the sign-in form.
    const keys = [{ key: accountKey(account.common_id), rule: ACCOUNT_RULE }];
    const state = await this.#throttle.reserve(keys);
    if (state.blocked || state.waitSeconds > 0) throw new DomainError('locked', 'too many failed attempts', { waitSeconds: state.waitSeconds });
    let verified;
    try {
      verified = await this.#hasher.verify(account.password_hash, asTyped(account, current));
    } catch (error) {
      await this.#throttle.release(keys); // too busy to check: not a guess
      throw error;
    }
    if (!verified.ok) {
      await this.#throttle.failed(keys);
      throw new DomainError('wrong_current_password', 'the current password is not correct');
    }
    await this.#throttle.succeeded(keys);
    const policy = checkPassword(next, { profile: this.#profile, commonId: account.common_id, currentPassword: asTyped(account, current) });
    if (!policy.ok) throw new DomainError('password_policy', 'the new password breaks the password rules', { violations: policy.violations, limits: policy.limits });
    const hash = await this.#hasher.hash(next);
    await this.#unitOfWork(async () => {
      // A change that raced with another one made with the same current password finds it current no more.
      if (!(await this.#store.setPassword(account.id, hash, false, account.password_hash))) {
        throw new DomainError('wrong_current_password', 'the current password is not correct');
      }
      await alongside?.();
    });
  }
}
