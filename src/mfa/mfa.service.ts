import type { SecretBox } from '../crypto/secret-box.ts';
import type { Clock } from '../shared/clock.ts';
import type { LoginThrottle, ThrottleRule } from '../throttle/login-throttle.ts';
import type { FactorRow, MfaStore } from './mfa.store.ts';
import { matchTotp, newTotpSecret, normalizeCode } from './totp.ts';

/** Wrong codes lock the method for a while; NIST allows at most 100 in a row, this is far below. */
export const OTP_RULE: ThrottleRule = { free: 5, baseSeconds: 60, maxSeconds: 900, hardStop: 100 };

/** The amr value each kind of factor adds to the session (RFC 8176). */
export const FACTOR_AMR: Record<FactorRow['kind'], string> = { totp: 'otp', token: 'otp', webauthn: 'hwk', phone: 'sms' };

export type VerifyOutcome =
  | { ok: true; factor: FactorRow; amr: string }
  | { ok: false; reason: 'wrong_code' | 'replayed' }
  | { ok: false; reason: 'locked'; waitSeconds: number; blocked: boolean };

/** Second factors: enrolment and verification, with replay protection and attempt limits. */
export class MfaService {
  readonly #store: MfaStore;
  readonly #box: SecretBox;
  readonly #throttle: LoginThrottle;
  readonly #clock: Clock;

  constructor(deps: { store: MfaStore; box: SecretBox; throttle: LoginThrottle; clock: Clock }) {
    this.#store = deps.store;
    this.#box = deps.box;
    this.#throttle = deps.throttle;
    this.#clock = deps.clock;
  }

  factors(accountId: string): Promise<FactorRow[]> {
    return this.#store.factors(accountId);
  }

  /** A new authenticator-app secret, kept encrypted in the interaction until it is confirmed. */
  pendingTotp(): { secret: string; sealed: string } {
    const secret = newTotpSecret();
    return { secret, sealed: this.#box.encrypt(secret) };
  }

  unseal(sealed: string): string {
    return this.#box.decrypt(sealed);
  }

  /**
   * Saves an authenticator app after one valid code. The code's time step is consumed, so it
   * cannot also serve as the first sign-in code.
   */
  async confirmTotp(accountId: string, sealed: string, input: unknown, label: string): Promise<VerifyOutcome> {
    return this.#guarded(accountId, 'totp', async () => {
      const secret = this.#box.decrypt(sealed);
      const step = await matchTotp(secret, normalizeCode(input), this.#clock.now());
      if (step === undefined) return { ok: false, reason: 'wrong_code' };
      if (!(await this.#store.consumeStep(accountId, step))) return { ok: false, reason: 'replayed' };
      const factor = await this.#store.insert({ accountId, kind: 'totp', label, secretEnc: sealed });
      return { ok: true, factor, amr: FACTOR_AMR.totp };
    });
  }

  /** Checks a code against every authenticator app and lent token of the account. */
  async verifyTotp(accountId: string, input: unknown): Promise<VerifyOutcome> {
    return this.#guarded(accountId, 'totp', async () => {
      const code = normalizeCode(input);
      for (const factor of await this.#store.factors(accountId)) {
        if ((factor.kind !== 'totp' && factor.kind !== 'token') || !factor.secret_enc) continue;
        const step = await matchTotp(this.#box.decrypt(factor.secret_enc), code, this.#clock.now(), { digits: factor.digits, period: factor.period });
        if (step === undefined) continue;
        if (!(await this.#store.consumeStep(accountId, step))) return { ok: false, reason: 'replayed' };
        await this.#store.touch(factor.id);
        return { ok: true, factor, amr: FACTOR_AMR[factor.kind] };
      }
      return { ok: false, reason: 'wrong_code' };
    });
  }

  async reset(accountId: string): Promise<number> {
    return this.#store.deleteAll(accountId);
  }

  /** One attempt under the method's limits: a wrong or replayed code counts as a failure. */
  async #guarded(accountId: string, method: string, attempt: () => Promise<VerifyOutcome>): Promise<VerifyOutcome> {
    const keys = [{ key: `mfa:${method}:${accountId}`, rule: OTP_RULE }];
    const state = await this.#throttle.reserve(keys);
    if (state.blocked || state.waitSeconds > 0) return { ok: false, reason: 'locked', ...state };
    let outcome: VerifyOutcome;
    try {
      outcome = await attempt();
    } catch (error) {
      await this.#throttle.release(keys); // not checked: not a guess
      throw error;
    }
    if (outcome.ok) await this.#throttle.succeeded(keys);
    else await this.#throttle.failed(keys);
    return outcome;
  }
}
