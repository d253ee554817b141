import { type KeyObject, randomInt } from 'node:crypto';
import { hmac } from '../crypto/tokens.ts';
import type { LoginThrottle, ThrottleRule } from '../throttle/login-throttle.ts';
import type { CodeCheck, OtpCodeStore } from './otp-code.store.ts';
import { CODE_SEND_THROTTLE } from '../config/defaults.ts';

/** Sending is rate-limited per account and per destination: 3 codes, then waits from 1 minute to 1 hour. */
export const SEND_RULE: ThrottleRule = CODE_SEND_THROTTLE;

export type SendOutcome = { ok: true } | { ok: false; reason: 'rate_limited'; waitSeconds: number } | { ok: false; reason: 'delivery_failed' };

/** A delivery channel's failure that the person can do something about (try again, another way). */
export class DeliveryError extends Error {
  override name = 'DeliveryError';
  /** The server itself could not be reached or used (not one message or recipient refused): the next message would fare no better. */
  readonly serverDown: boolean;

  constructor(message: string, options: { serverDown?: boolean } = {}) {
    super(message);
    this.serverDown = options.serverDown ?? false;
  }
}

/**
 * 6-digit codes sent to a person (SMS, voice call, email), each bound to a purpose (what it
 * proves, for which sign-in): stored as HMAC digests, single use, 10 minutes, 5 tries.
 */
export class CodeSender {
  readonly #codes: OtpCodeStore;
  readonly #throttle: LoginThrottle;
  readonly #key: KeyObject;

  constructor(deps: { codes: OtpCodeStore; throttle: LoginThrottle; key: KeyObject }) {
    this.#codes = deps.codes;
    this.#throttle = deps.throttle;
    this.#key = deps.key;
  }

  /** Sends a fresh code; a failed delivery withdraws it and counts nothing, so nothing is lost. */
  async send(channel: 'phone' | 'email', accountId: string, purpose: string, destination: string, deliver: (code: string) => Promise<void>): Promise<SendOutcome> {
    const keys = [
      { key: `send:${channel}:${accountId}`, rule: SEND_RULE },
      { key: `send:to:${hmac(this.#key, destination)}`, rule: SEND_RULE },
    ];
    const state = await this.#throttle.reserve(keys);
    if (state.blocked || state.waitSeconds > 0) return { ok: false, reason: 'rate_limited', waitSeconds: state.waitSeconds };
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    await this.#codes.issue(accountId, purpose, this.#digest(purpose, code));
    try {
      await deliver(code);
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
  async check(accountId: string, purpose: string, input: string): Promise<CodeCheck> {
    const digest = /^\d{6}$/.test(input) ? this.#digest(purpose, input) : 'malformed';
    return this.#codes.consume(accountId, purpose, digest);
  }

  #digest(purpose: string, code: string): string {
    return hmac(this.#key, `${purpose}:${code}`);
  }
}
