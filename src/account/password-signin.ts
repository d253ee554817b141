import type { SigninLog } from '../audit/signin-log.ts';
import { OverloadedError } from '../shared/errors.ts';
import type { PasswordHasher } from '../password/password-hasher.ts';
import { accountKey, addressKey, ACCOUNT_RULE, ADDRESS_RULE, type LoginThrottle } from '../throttle/login-throttle.ts';
import type { AccountRow, AccountStore } from './account.store.ts';
import { PASSWORD_INPUT_MAX_LENGTH } from '../config/defaults.ts';

export interface SigninRequest {
  commonId: string;
  password: string;
  ip: string;
  userAgent: string | null;
  clientId: string | null;
  /**
   * The OAuth password grant of a --legacy-password client: an app password always works, the
   * real password only for an account without MFA at a client that does not demand it (else the
   * grant would bypass the second factor).
   */
  passwordGrant?: { clientRequiresMfa: boolean };
}

/** What the password grant needs to know beyond the account row. */
export interface LegacyCredentials {
  usesMfa(account: AccountRow): Promise<boolean>;
  matchesAppPassword(accountId: string, candidate: string): Promise<boolean>;
}

export type SigninOutcome =
  | { ok: true; account: AccountRow; method: 'password' | 'app_password' }
  /** Unknown account and wrong password look the same to the person. */
  | { ok: false; reason: 'invalid_credentials' }
  | { ok: false; reason: 'locked'; waitSeconds: number }
  | { ok: false; reason: 'blocked' }
  | { ok: false; reason: 'account_suspended' | 'account_revoked'; account: AccountRow };

/** Longer than any policy allows: refused without spending a hash on it. */
const MAX_PASSWORD_INPUT = PASSWORD_INPUT_MAX_LENGTH;

/**
 * Checks a Common ID and password under the brute-force limits, spending the same hashing time
 * whether or not the account exists, and records the attempt in the sign-in log.
 */
export class PasswordSignin {
  readonly #accounts: AccountStore;
  readonly #hasher: PasswordHasher;
  readonly #throttle: LoginThrottle;
  readonly #log: SigninLog;
  readonly #legacy: LegacyCredentials;

  constructor(deps: { accounts: AccountStore; hasher: PasswordHasher; throttle: LoginThrottle; log: SigninLog; legacy: LegacyCredentials }) {
    this.#accounts = deps.accounts;
    this.#hasher = deps.hasher;
    this.#throttle = deps.throttle;
    this.#log = deps.log;
    this.#legacy = deps.legacy;
  }

  /**
   * Exactly one argon2 verification per attempt whatever the outcome, so neither the existence of
   * an account nor its MFA status shows in the time taken.
   */
  async #check(account: AccountRow | undefined, password: string, passwordGrant: SigninRequest['passwordGrant']): Promise<'password' | 'app_password' | undefined> {
    if ([...password].length > MAX_PASSWORD_INPUT) return undefined;
    if (!account || !password) {
      await this.#hasher.verifyNothing(password);
      return undefined;
    }
    if (passwordGrant && (passwordGrant.clientRequiresMfa || (await this.#legacy.usesMfa(account)))) {
      await this.#hasher.verifyNothing(password);
      return (await this.#legacy.matchesAppPassword(account.id, password)) ? 'app_password' : undefined;
    }
    const result = await this.#hasher.verify(account.password_hash, password);
    if (result.ok) {
      if (result.needsRehash) await this.#accounts.rehash(account.id, account.password_hash, await this.#hasher.hash(password));
      return 'password';
    }
    return passwordGrant && (await this.#legacy.matchesAppPassword(account.id, password)) ? 'app_password' : undefined;
  }

  async signIn(request: SigninRequest): Promise<SigninOutcome> {
    const keys = [
      { key: accountKey(request.commonId), rule: ACCOUNT_RULE },
      { key: addressKey(request.ip), rule: ADDRESS_RULE },
    ];
    const account = await this.#accounts.findByCommonId(request.commonId);
    const record = (result: 'success' | 'failure', reason: string) =>
      this.#log.record({ accountId: account?.id ?? null, clientId: request.clientId, ip: request.ip, userAgent: request.userAgent, result, reason });

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
    let method: 'password' | 'app_password' | undefined;
    try {
      method = await this.#check(account, password, request.passwordGrant);
    } catch (error) {
      // Turned away before the password was checked: logged, but not a failed guess.
      await this.#throttle.release(keys);
      if (error instanceof OverloadedError) await record('failure', 'overloaded');
      throw error;
    }

    if (!method || !account) {
      await this.#throttle.failed(keys);
      await record('failure', account ? 'wrong_password' : 'unknown_account');
      return { ok: false, reason: 'invalid_credentials' };
    }
    await this.#throttle.succeeded(keys);
    if (account.status !== 'active') {
      const reason = account.status === 'suspended' ? 'account_suspended' : 'account_revoked';
      await record('failure', reason);
      return { ok: false, reason, account };
    }
    await record('success', request.passwordGrant ? `password_grant_${method}` : method);
    return { ok: true, account, method };
  }
}
