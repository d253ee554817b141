import type * as WebAuthn from '@simplewebauthn/server';
import type { AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import type { SecretBox } from '../crypto/secret-box.ts';
import { randomUUID } from 'node:crypto';
import { isUuid } from '../shared/uuid.ts';
import type { Clock } from '../shared/clock.ts';
import { mailedCodeKey, type LoginThrottle, type ThrottleRule } from '../throttle/login-throttle.ts';
import type { AccountRow } from '../account/account.store.ts';
import type { FactorRow, MfaStore } from './mfa.store.ts';
import { phishingResistant } from './assurance.ts';
import { matchTotp, newTotpSecret, normalizeCode } from './totp.ts';
import type { PhoneService, PhoneTarget } from './phone.service.ts';
import { SECOND_FACTOR_THROTTLE } from '../config/defaults.ts';
import { NO_METER, type Meter } from '../metrics/meter.ts';
import { lazyModule } from '../shared/lazy-module.ts';

/** Loaded on the first security-key or passkey step, not at start. */
const webauthn = lazyModule((require) => require('@simplewebauthn/server') as typeof WebAuthn);

/** Wrong codes lock the method for a while; NIST allows at most 100 in a row, this is far below. */
export const OTP_RULE: ThrottleRule = SECOND_FACTOR_THROTTLE;

const METHODS = ['totp', 'webauthn', 'phone'] as const;
type Method = (typeof METHODS)[number];
const methodKey = (method: Method, accountId: string) => `mfa:${method}:${accountId}`;

/** Transports a browser may report for a WebAuthn credential; anything else is dropped. */
const TRANSPORTS = new Set(['usb', 'nfc', 'ble', 'internal', 'hybrid', 'cable', 'smart-card']);

/** The amr value each kind of factor adds to the session (RFC 8176). */
export const FACTOR_AMR: Record<FactorRow['kind'], string> = { totp: 'otp', token: 'otp', webauthn: 'hwk', phone: 'sms' };

/** A security key or passkey. */
export const isPhishingResistant = (factor: Pick<FactorRow, 'kind'>): boolean => phishingResistant([FACTOR_AMR[factor.kind]]);

/**
 * The factors a sign-in may ask for: with a phishing-resistant factor demanded (ACR_PHISHING_RESISTANT),
 * only the account's security keys and passkeys, when it has any; otherwise all of them (an account
 * without one goes through its usual factor, and the client that demanded one refuses the result).
 */
export function factorsFor<F extends Pick<FactorRow, 'kind'>>(factors: readonly F[], phishingResistantOnly: boolean): F[] {
  const resistant = factors.filter(isPhishingResistant);
  return phishingResistantOnly && resistant.length > 0 ? resistant : [...factors];
}

export type VerifyOutcome =
  | { ok: true; factor: FactorRow; amr: string }
  | { ok: false; reason: 'wrong_code' | 'replayed' | 'webauthn_failed' | 'expired' }
  | { ok: false; reason: 'locked'; waitSeconds: number; blocked: boolean };

/** A sign-in method added to or removed from an account (the notices mail it to the person). */
export interface FactorChange {
  accountId: string;
  change: 'added' | 'removed';
  /** The kind of method; 'all' when an operator reset every method at once. */
  method: FactorRow['kind'] | 'all';
  /** Names this change once: the factor's id with the change, or a fresh id for a reset. */
  eventId: string;
}

/** Where WebAuthn credentials are scoped: the issuer's host and origin. */
export interface RelyingParty {
  name: string;
  id: string;
  origin: string;
}

function parseJson<T>(input: unknown): T | undefined {
  if (typeof input !== 'string' || input.length > 12_000) return undefined;
  try {
    const value = JSON.parse(input) as unknown;
    return value && typeof value === 'object' ? (value as T) : undefined;
  } catch {
    return undefined;
  }
}

/** Second factors: enrolment and verification, with replay protection and attempt limits. */
export class MfaService {
  readonly #store: MfaStore;
  readonly #box: SecretBox;
  readonly #throttle: LoginThrottle;
  readonly #clock: Clock;
  readonly #rp: RelyingParty;
  readonly #meter: Meter;
  readonly phone: PhoneService;
  readonly #onChange: (change: FactorChange) => void;
  readonly #unitOfWork: <T>(work: () => Promise<T>) => Promise<T>;
  readonly #recordEnrolment: (factor: FactorRow) => Promise<unknown>;

  /**
   * `onChange` hears of every added or removed method; it must return at once (it runs in the
   * request). `recordEnrolment` writes a new factor's audit record, in the unit (Database#unitOfWork)
   * that saves the factor.
   */
  constructor(deps: {
    store: MfaStore;
    box: SecretBox;
    throttle: LoginThrottle;
    clock: Clock;
    rp: RelyingParty;
    phone: PhoneService;
    unitOfWork: <T>(work: () => Promise<T>) => Promise<T>;
    recordEnrolment: (factor: FactorRow) => Promise<unknown>;
    meter?: Meter;
    onChange?: (change: FactorChange) => void;
  }) {
    this.#store = deps.store;
    this.#box = deps.box;
    this.#throttle = deps.throttle;
    this.#clock = deps.clock;
    this.#rp = deps.rp;
    this.#meter = deps.meter ?? NO_METER;
    this.phone = deps.phone;
    this.#onChange = deps.onChange ?? (() => undefined);
    this.#unitOfWork = deps.unitOfWork;
    this.#recordEnrolment = deps.recordEnrolment;
  }

  /** Saves a phone after the code sent to it for this enrolment (`purpose`) came back. */
  async confirmPhone(accountId: string, purpose: string, target: PhoneTarget, input: unknown, label: string): Promise<VerifyOutcome> {
    return this.#guarded(accountId, 'phone', 'enrol', async () => {
      const result = await this.phone.check(accountId, purpose, normalizeCode(input));
      if (result !== 'ok') return { ok: false, reason: result === 'wrong' ? 'wrong_code' : 'expired' };
      const factor = await this.phone.addFactor(accountId, target, label);
      return { ok: true, factor, amr: target.channel === 'sms' ? 'sms' : 'tel' };
    });
  }

  /** Checks the code sent to one of the account's phones for this sign-in (`purpose`). */
  async verifyPhone(accountId: string, factorId: string, purpose: string, input: unknown): Promise<VerifyOutcome> {
    return this.#guarded(accountId, 'phone', 'verify', async () => {
      const factor = (await this.#store.factors(accountId)).find((f) => f.id === factorId && f.kind === 'phone');
      if (!factor) return { ok: false, reason: 'expired' };
      const result = await this.phone.check(accountId, purpose, normalizeCode(input));
      if (result !== 'ok') return { ok: false, reason: result === 'wrong' ? 'wrong_code' : 'expired' };
      await this.#store.touch(factor.id);
      return { ok: true, factor, amr: this.phone.target(factor).channel === 'sms' ? 'sms' : 'tel' };
    });
  }

  /** Options for creating a security key or passkey credential; user verification is required. */
  async webauthnRegistrationOptions(account: { id: string; common_id: string; name: string }): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const existing = (await this.#store.factors(account.id)).filter((f) => f.credential_id);
    return webauthn().generateRegistrationOptions({
      rpName: this.#rp.name,
      rpID: this.#rp.id,
      userName: account.common_id,
      userDisplayName: account.name,
      userID: new TextEncoder().encode(account.id),
      attestationType: 'none',
      excludeCredentials: existing.map((f) => ({ id: f.credential_id!, transports: f.transports?.split(',').filter(Boolean) })),
      authenticatorSelection: { userVerification: 'required', residentKey: 'preferred' },
    });
  }

  async confirmWebauthn(accountId: string, input: unknown, expectedChallenge: string, label: string): Promise<VerifyOutcome> {
    return this.#guarded(accountId, 'webauthn', 'enrol', async () => {
      const response = parseJson<RegistrationResponseJSON>(input);
      if (!response) return { ok: false, reason: 'webauthn_failed' };
      const result = await webauthn()
        .verifyRegistrationResponse({
          response,
          expectedChallenge,
          expectedOrigin: this.#rp.origin,
          expectedRPID: this.#rp.id,
          requireUserVerification: true,
        })
        .catch(() => undefined);
      if (!result?.verified) return { ok: false, reason: 'webauthn_failed' };
      const { credential } = result.registrationInfo;
      const transports = Array.isArray(credential.transports) ? credential.transports.filter((t) => typeof t === 'string' && TRANSPORTS.has(t)) : [];
      // A credential id registered before (here or to another account) is refused, not a 500.
      const factor = await this.#store
        .insert({
          accountId,
          kind: 'webauthn',
          label,
          credential: { id: credential.id, publicKey: Buffer.from(credential.publicKey).toString('base64url'), signCount: credential.counter, transports },
        })
        .catch((error: { code?: string }) => {
          if (error.code === '23505') return undefined;
          throw error;
        });
      if (!factor) return { ok: false, reason: 'webauthn_failed' };
      return { ok: true, factor, amr: FACTOR_AMR.webauthn };
    });
  }

  async webauthnAuthenticationOptions(accountId: string): Promise<PublicKeyCredentialRequestOptionsJSON | undefined> {
    const credentials = (await this.#store.factors(accountId)).filter((f) => f.credential_id);
    if (credentials.length === 0) return undefined;
    return webauthn().generateAuthenticationOptions({
      rpID: this.#rp.id,
      userVerification: 'required',
      allowCredentials: credentials.map((f) => ({ id: f.credential_id!, transports: f.transports?.split(',').filter(Boolean) as never })),
    });
  }

  /** Checks an assertion: signature, challenge, origin, user verification and a growing counter. */
  async verifyWebauthn(accountId: string, input: unknown, expectedChallenge: string): Promise<VerifyOutcome> {
    return this.#guarded(accountId, 'webauthn', 'verify', async () => {
      const response = parseJson<AuthenticationResponseJSON>(input);
      const factor = response && (await this.#store.factors(accountId)).find((f) => f.credential_id === response.id);
      if (!response || !factor) return { ok: false, reason: 'webauthn_failed' };
      const result = await webauthn()
        .verifyAuthenticationResponse({
          response,
          expectedChallenge,
          expectedOrigin: this.#rp.origin,
          expectedRPID: this.#rp.id,
          requireUserVerification: true,
          credential: {
            id: factor.credential_id!,
            publicKey: Buffer.from(factor.public_key!, 'base64url'),
            counter: Number(factor.sign_count),
            transports: factor.transports?.split(',').filter(Boolean) as never,
          },
        })
        .catch(() => undefined);
      if (!result?.verified) return { ok: false, reason: 'webauthn_failed' };
      // A counter that did not grow means a cloned authenticator or a replay.
      if (!(await this.#store.advanceCounter(factor.id, result.authenticationInfo.newCounter))) return { ok: false, reason: 'replayed' };
      return { ok: true, factor, amr: FACTOR_AMR.webauthn };
    });
  }

  factors(accountId: string): Promise<FactorRow[]> {
    return this.#store.factors(accountId);
  }

  /** The account's row with its factors, in one read; later reads of the factors in the request get these. */
  accountWithFactors(accountId: string): Promise<{ account: AccountRow; factors: FactorRow[] } | undefined> {
    return this.#store.accountWithFactors(accountId);
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
    return this.#guarded(accountId, 'totp', 'enrol', async () => {
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
    return this.#guarded(accountId, 'totp', 'verify', async () => {
      const code = normalizeCode(input);
      for (const factor of await this.#store.factors(accountId)) {
        if ((factor.kind !== 'totp' && factor.kind !== 'token') || !factor.secret_enc) continue;
        // One unusable factor (a token loaded before secrets were checked) must not block the others.
        const step = await matchTotp(this.#box.decrypt(factor.secret_enc), code, this.#clock.now(), { digits: factor.digits, period: factor.period }).catch(() => undefined);
        if (step === undefined) continue;
        if (!(await this.#store.consumeStep(accountId, step))) return { ok: false, reason: 'replayed' };
        await this.#store.touch(factor.id);
        return { ok: true, factor, amr: FACTOR_AMR[factor.kind] };
      }
      return { ok: false, reason: 'wrong_code' };
    });
  }

  /** `keepLast`: refuse (DomainError last_method) to remove the only factor of an account that must use MFA. */
  async removeFactor(accountId: string, factorId: string, options: { keepLast?: boolean } = {}): Promise<boolean> {
    if (!isUuid(factorId)) return false;
    const factor = (await this.#store.factors(accountId)).find((f) => f.id === factorId);
    const removed = factor !== undefined && (await this.#store.deleteOne(accountId, factorId, options));
    if (removed && factor) this.#onChange({ accountId, change: 'removed', method: factor.kind, eventId: `${factorId}/removed` });
    return removed;
  }

  makeDefault(accountId: string, factorId: string): Promise<boolean> {
    return isUuid(factorId) ? this.#store.setDefault(accountId, factorId) : Promise.resolve(false);
  }

  /** Removes every factor (and gives back any lent token) and clears the methods' locks. */
  async reset(accountId: string): Promise<number> {
    const removed = await this.#store.deleteAll(accountId);
    await this.clearLocks(accountId);
    if (removed > 0) this.#onChange({ accountId, change: 'removed', method: 'all', eventId: `reset/${randomUUID()}` });
    return removed;
  }

  /** An operator's unlock also lifts the locks of the second-factor methods and of mailed codes. */
  async clearLocks(accountId: string): Promise<void> {
    for (const method of METHODS) await this.#throttle.clear(methodKey(method, accountId));
    await this.#throttle.clear(mailedCodeKey(accountId));
  }

  /**
   * One attempt under the method's limits: a wrong or replayed code counts as a failure. Counted for
   * the metrics: a verification by its result, a set-up (`enrol`) when it adds the factor.
   */
  async #guarded(accountId: string, method: Method, purpose: 'verify' | 'enrol', attempt: () => Promise<VerifyOutcome>): Promise<VerifyOutcome> {
    const outcome = await this.#attempt(accountId, method, purpose === 'enrol' ? () => this.#enrolling(attempt) : attempt);
    if (purpose === 'verify') this.#meter.mfaVerification(method, outcome.ok ? 'success' : outcome.reason);
    else if (outcome.ok) this.#meter.factorAdded(outcome.factor.kind);
    if (purpose === 'enrol' && outcome.ok) this.#onChange({ accountId, change: 'added', method: outcome.factor.kind, eventId: `${outcome.factor.id}/added` });
    return outcome;
  }

  /** A set-up's new factor and its audit record land together: the audit never misses a method that works. */
  #enrolling(attempt: () => Promise<VerifyOutcome>): Promise<VerifyOutcome> {
    return this.#unitOfWork(async () => {
      const outcome = await attempt();
      if (outcome.ok) await this.#recordEnrolment(outcome.factor);
      return outcome;
    });
  }

  async #attempt(accountId: string, method: Method, attempt: () => Promise<VerifyOutcome>): Promise<VerifyOutcome> {
    const guessed = await this.#throttle.guess([{ key: methodKey(method, accountId), rule: OTP_RULE }], attempt, (outcome) => outcome.ok);
    return 'locked' in guessed ? { ok: false, reason: 'locked', ...guessed.locked } : guessed.outcome;
  }
}
