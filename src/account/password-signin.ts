import type { OperationNodeSource } from 'kysely';
import { accessDenied, type SigninReason } from '../audit/signin-reasons.ts';
import type { SigninLog } from '../audit/signin-log.ts';
import { OverloadedError } from '../shared/errors.ts';
import type { PasswordHasher } from '../password/password-hasher.ts';
import type { HashCensus } from '../password/hash-census.ts';
import { accountKey, addressKey, ACCOUNT_RULE, ADDRESS_RULE, type LoginThrottle } from '../throttle/login-throttle.ts';
import type { AccountRow, AccountStore } from './account.store.ts';
import { PASSWORD_INPUT_MAX_LENGTH } from '../config/defaults.ts';
import type { AccessDecision, DenialReason } from '../access/access-rules.ts';

export interface SigninRequest {
  commonId: string;
  password: string;
  ip: string;
  userAgent: string | null;
  clientId: string | null;
  /**
   * The OAuth password grant of a --legacy-password client: an app password always works, the
   * real password only for an account without MFA (else the grant would bypass its second factor).
   */
  passwordGrant?: PasswordGrantCheck;
}

export type SigninMethod = 'password' | 'app_password';

export interface PasswordGrantCheck {
  /**
   * The client's access rules for the account and the credential it showed (an MFA demand of the
   * client included): the grant's whole decision, status too, logged with the rule's reason code.
   */
  admit(account: AccountRow, method: SigninMethod): Promise<AccessDecision>;
}

/** What the password grant needs to know beyond the account row. */
export interface LegacyCredentials {
  usesMfa(account: AccountRow): Promise<boolean>;
  /**
   * The password must be changed before it is used (an initial or reissued one, or one past the
   * age limit): a browser sign-in goes through the change, a grant cannot and is refused.
   */
  mustChangePassword(account: AccountRow): Promise<boolean>;
  matchesAppPassword(accountId: string, candidate: string): Promise<boolean>;
  /** The reads usesMfa and matchesAppPassword make beyond the account's, for no account: an unknown Common ID takes as long at the grant. */
  asForUnknown(candidate: string): Promise<void>;
}

export type SigninOutcome =
  | { ok: true; account: AccountRow; method: SigninMethod }
  /** Unknown account and wrong password look the same to the person. */
  | { ok: false; reason: 'invalid_credentials' }
  | { ok: false; reason: 'locked'; waitSeconds: number }
  | { ok: false; reason: 'blocked' }
  | { ok: false; reason: 'account_suspended' | 'account_revoked'; account: AccountRow };

/** The password grant's outcome: the form's, a password to be changed first, or a refusal by the client's access rules. */
export type GrantOutcome = SigninOutcome | { ok: false; reason: 'password_change_required' } | { ok: false; reason: 'access_denied'; denial: DenialReason };

/** Longer than any policy allows: refused without spending a hash on it. */
const MAX_PASSWORD_INPUT = PASSWORD_INPUT_MAX_LENGTH;

/**
 * The password as it is verified (at sign-in and as the current one of a change). An initial or
 * reissued one (must_change_password) has no whitespace in its alphabet (password/initial-password.ts)
 * and the letter prints it in groups of four: the gaps typed with it are left out, before the one
 * verification every attempt makes.
 */
export function asTyped(account: AccountRow, password: string): string {
  return account.must_change_password ? password.replace(/\s/gu, '') : password;
}

/**
 * Checks a Common ID and password under the brute-force limits, spending the same hashing time
 * whether or not the account exists, and records the attempt in the sign-in log.
 */
export class PasswordSignin {
  readonly #accounts: AccountStore;
  readonly #findAccount: (commonId: string) => Promise<AccountRow | undefined>;
  readonly #hasher: PasswordHasher;
  readonly #throttle: LoginThrottle;
  readonly #log: SigninLog;
  readonly #legacy: LegacyCredentials;
  readonly #census: HashCensus;

  /**
   * `findAccount`: the account of a Common ID; deps.ts reads it with its factors, which the steps
   * after a right password (and the password grant's legacy check) then take from the request memo.
   */
  constructor(deps: {
    accounts: AccountStore;
    findAccount: (commonId: string) => Promise<AccountRow | undefined>;
    hasher: PasswordHasher;
    census: HashCensus;
    throttle: LoginThrottle;
    log: SigninLog;
    legacy: LegacyCredentials;
  }) {
    this.#accounts = deps.accounts;
    this.#findAccount = deps.findAccount;
    this.#hasher = deps.hasher;
    this.#census = deps.census;
    this.#throttle = deps.throttle;
    this.#log = deps.log;
    this.#legacy = deps.legacy;
  }

  /** Ready to refuse unknown accounts at once: the stored hash shapes counted, their dummy hashes made. */
  warmUp(): Promise<void> {
    return this.#census.refresh();
  }

  /**
   * Exactly one argon2 verification per attempt whatever the outcome, and of the same parameters,
   * so neither the existence of an account nor its MFA status shows in the time taken: where the
   * answer is known without it, a hash shaped like the account's is verified (verifyLike), or for
   * an unknown account one shaped like the stored hashes (hash-census.ts), not like today's settings.
   */
  async #check(commonId: string, account: AccountRow | undefined, password: string, passwordGrant: SigninRequest['passwordGrant']): Promise<SigninMethod | undefined> {
    if ([...password].length > MAX_PASSWORD_INPUT) return undefined;
    if (!account) {
      await this.#hasher.verifyLike(await this.#census.shapeFor(commonId), password);
      if (passwordGrant) await this.#legacy.asForUnknown(password);
      return undefined;
    }
    const typed = asTyped(account, password);
    if (!typed) {
      await this.#hasher.verifyLike(account.password_hash, typed);
      return undefined;
    }
    if (passwordGrant && (await this.#legacy.usesMfa(account))) {
      await this.#hasher.verifyLike(account.password_hash, typed);
      return (await this.#legacy.matchesAppPassword(account.id, password)) ? 'app_password' : undefined;
    }
    const result = await this.#hasher.verify(account.password_hash, typed);
    if (result.ok) {
      if (result.needsRehash) await this.#accounts.rehash(account.id, account.password_hash, await this.#hasher.hash(typed));
      return 'password';
    }
    return passwordGrant && (await this.#legacy.matchesAppPassword(account.id, password)) ? 'app_password' : undefined;
  }

  signIn(request: SigninRequest & { passwordGrant: PasswordGrantCheck }): Promise<GrantOutcome>;
  signIn(request: SigninRequest): Promise<SigninOutcome>;
  async signIn(request: SigninRequest): Promise<GrantOutcome> {
    const keys = [
      { key: accountKey(request.commonId), rule: ACCOUNT_RULE },
      { key: addressKey(request.ip), rule: ADDRESS_RULE },
    ];
    const account = await this.#findAccount(request.commonId);
    // Each outcome's log row goes out in the statement of the throttle's outcome, where there is one.
    const record = (result: 'success' | 'failure', reason: SigninReason, throttleOutcome?: (alongside: OperationNodeSource) => Promise<void>) =>
      this.#log.record({ accountId: account?.id ?? null, clientId: request.clientId, ip: request.ip, userAgent: request.userAgent, result, reason }, throttleOutcome);

    // The attempt is counted before the password is checked, atomically per key.
    const state = await this.#throttle.reserve(keys);
    if (state.blocked) {
      await record('failure', 'blocked');
      return { ok: false, reason: 'blocked' };
    }
    if (state.waitSeconds > 0) {
      await record('failure', 'locked');
      return { ok: false, reason: 'locked', waitSeconds: state.waitSeconds };
    }

    const password = typeof request.password === 'string' ? request.password : '';
    let method: SigninMethod | undefined;
    try {
      method = await this.#check(request.commonId, account, password, request.passwordGrant);
    } catch (error) {
      // Turned away before the password was checked: logged, but not a failed guess.
      const released = (alongside: OperationNodeSource) => this.#throttle.release(keys, alongside);
      if (error instanceof OverloadedError) await record('failure', 'overloaded', released);
      else await this.#throttle.release(keys);
      throw error;
    }

    if (!method || !account) {
      await record('failure', account ? 'wrong_password' : 'unknown_account', (alongside) => this.#throttle.failed(keys, alongside));
      return { ok: false, reason: 'invalid_credentials' };
    }
    const succeeded = (alongside: OperationNodeSource) => this.#throttle.succeeded(keys, alongside);
    // The grant's answer is the client's access rules (the one evaluation every path asks); the
    // form turns a suspended or closed account to the page that says so, and its steps ask the rules.
    if (request.passwordGrant) {
      let decision: AccessDecision;
      let mustChange: boolean;
      try {
        decision = await request.passwordGrant.admit(account, method);
        mustChange = decision.allowed && method === 'password' && (await this.#legacy.mustChangePassword(account));
      } catch (error) {
        // No answer (the database busy): the claims end, and the right password is no failure.
        await this.#throttle.release(keys);
        throw error;
      }
      if (!decision.allowed) {
        await record('failure', accessDenied(decision.reason), succeeded);
        return { ok: false, reason: 'access_denied', denial: decision.reason };
      }
      if (mustChange) {
        await record('failure', 'password_change_required', succeeded);
        return { ok: false, reason: 'password_change_required' };
      }
    } else if (account.status !== 'active') {
      const reason = account.status === 'suspended' ? 'account_suspended' : 'account_revoked';
      await record('failure', reason, succeeded);
      return { ok: false, reason, account };
    }
    await record('success', request.passwordGrant ? `password_grant_${method}` : method, succeeded);
    return { ok: true, account, method };
  }
}
