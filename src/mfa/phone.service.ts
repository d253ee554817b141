import { randomInt } from 'node:crypto';
import type { SecretBox } from '../crypto/secret-box.ts';
import { hmac } from '../crypto/tokens.ts';
import type { LoginThrottle, ThrottleRule } from '../throttle/login-throttle.ts';
import type { FactorRow, MfaStore } from './mfa.store.ts';
import type { OtpCodeStore } from './otp-code.store.ts';
import { DeliveryError, type PhoneChannel, type PhoneGateway } from './phone-gateway.ts';

/** Sending is rate-limited per account and per number: 3 codes, then waits from 1 minute to 1 hour. */
export const SEND_RULE: ThrottleRule = { free: 3, baseSeconds: 60, maxSeconds: 3600, forgetAfterSeconds: 3600 };

export interface PhoneTarget {
  phone: string;
  channel: PhoneChannel;
}

/** "+819012345678" from "090-1234-5678" (with the default country) or "+81 90 1234 5678". */
export function normalizePhone(input: unknown, defaultCountry: string): string | undefined {
  if (typeof input !== 'string' || input.length > 40) return undefined;
  const compact = input.normalize('NFKC').replace(/[\s().-]/g, '');
  const e164 = compact.startsWith('+') ? compact : compact.startsWith('0') ? `+${defaultCountry}${compact.slice(1)}` : undefined;
  return e164 && /^\+[1-9]\d{7,14}$/.test(e164) ? e164 : undefined;
}

export function maskPhone(phone: string): string {
  return `•••• ${phone.slice(-4)}`;
}

export type SendOutcome = { ok: true } | { ok: false; reason: 'rate_limited'; waitSeconds: number } | { ok: false; reason: 'delivery_failed' };

/**
 * The phone factor: a 6-digit code by SMS or voice call (NIST SP 800-63B-4 calls this a
 * restricted authenticator; the pages say so and offer the others). Codes expire in 10 minutes,
 * are single use, allow 5 tries, and are bound to what they prove (purpose).
 */
export class PhoneService {
  readonly #store: MfaStore;
  readonly #codes: OtpCodeStore;
  readonly #gateway: PhoneGateway;
  readonly #throttle: LoginThrottle;
  readonly #box: SecretBox;
  readonly #key: Buffer;

  constructor(deps: { store: MfaStore; codes: OtpCodeStore; gateway: PhoneGateway; throttle: LoginThrottle; box: SecretBox }) {
    this.#store = deps.store;
    this.#codes = deps.codes;
    this.#gateway = deps.gateway;
    this.#throttle = deps.throttle;
    this.#box = deps.box;
    this.#key = deps.box.deriveKey('otp-code');
  }

  get available(): boolean {
    return this.#gateway.available;
  }

  seal(target: PhoneTarget): string {
    return this.#box.encrypt(JSON.stringify(target));
  }

  unseal(sealed: string): PhoneTarget {
    return JSON.parse(this.#box.decrypt(sealed)) as PhoneTarget;
  }

  target(factor: FactorRow): PhoneTarget {
    return this.unseal(factor.secret_enc!);
  }

  /** Sends a fresh code for `purpose`; a failed delivery withdraws it, so nothing is lost or left. */
  async send(accountId: string, purpose: string, target: PhoneTarget, text: (code: string) => string): Promise<SendOutcome> {
    const keys = [
      { key: `send:account:${accountId}`, rule: SEND_RULE },
      { key: `send:phone:${hmac(this.#key, target.phone)}`, rule: SEND_RULE },
    ];
    const state = await this.#throttle.reserve(keys);
    if (state.blocked || state.waitSeconds > 0) return { ok: false, reason: 'rate_limited', waitSeconds: state.waitSeconds };
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    await this.#codes.issue(accountId, purpose, this.#digest(purpose, code));
    try {
      await this.#gateway.send({ to: target.phone, channel: target.channel, text: text(code) });
    } catch (error) {
      await this.#codes.withdraw(accountId, purpose);
      await this.#throttle.release(keys);
      if (error instanceof DeliveryError) return { ok: false, reason: 'delivery_failed' };
      throw error;
    }
    await this.#throttle.failed(keys); // a send is counted like a spent attempt
    return { ok: true };
  }

  /** Uses up the code for `purpose`; wrong, expired and used codes all fail. */
  async check(accountId: string, purpose: string, input: string): Promise<'ok' | 'wrong' | 'expired_or_used'> {
    if (!/^\d{6}$/.test(input)) return (await this.#codes.consume(accountId, purpose, 'malformed')) === 'expired_or_used' ? 'expired_or_used' : 'wrong';
    return this.#codes.consume(accountId, purpose, this.#digest(purpose, input));
  }

  async addFactor(accountId: string, target: PhoneTarget, label: string): Promise<FactorRow> {
    return this.#store.insert({ accountId, kind: 'phone', label, secretEnc: this.seal(target) });
  }

  #digest(purpose: string, code: string): string {
    return hmac(this.#key, `${purpose}:${code}`);
  }
}

export function phoneLabel(target: PhoneTarget, channel: { sms: string; voice: string }): string {
  return `${target.channel === 'sms' ? channel.sms : channel.voice} ${maskPhone(target.phone)}`;
}

