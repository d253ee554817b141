import { createHash } from 'node:crypto';
import { DEVICE_POLL_MIN_SECONDS, DEVICE_USER_CODE_GUESSES_EVERYONE, DEVICE_USER_CODE_GUESSES_PER_ADDRESS } from '../config/defaults.ts';
import type { Bucket, LoginThrottle, ThrottleState } from './login-throttle.ts';
import { sourceOf } from './source.ts';

/** Polls of one device code: one per DEVICE_POLL_MIN_SECONDS, no burst. */
const POLL: Bucket = { burst: 1, refillSeconds: DEVICE_POLL_MIN_SECONDS };

/**
 * The limits of the device authorization grant (RFC 8628 section 5), counted in the throttle table
 * so that they hold across nodes:
 * - user codes are short enough to type, so they can be guessed. Every code entered takes one from
 *   its source address's budget before it is looked up, and a code found live and unused is given
 *   back. Wrong codes stay counted, and so do expired and used ones: they can never lead to an
 *   approval, and giving them back would need to tell them apart from wrong ones on the provider's
 *   error pages for no one's benefit. Parallel guesses cannot pass an address's budget together;
 * - everyone's budget is charged only for a miss, after the lookup, so that wrong codes from many
 *   addresses can never refuse a right one. It does not bound the lookups themselves (a miss past it
 *   still tells the guesser "not this code", as 429 in place of 400); what bounds guessing is each
 *   address's budget. Its refusals are logged, the mark of guessing spread over many addresses;
 * - a device polling for its token faster than the interval is told to slow down.
 */
export class DeviceCodeLimits {
  readonly #throttle: LoginThrottle;

  constructor(throttle: LoginThrottle) {
    this.#throttle = throttle;
  }

  /** Counts a user code about to be looked up against its address; a wait over 0 refuses it. */
  async takeGuess(ip: string): Promise<ThrottleState> {
    return this.#throttle.takeFromBucket(addressBudget(ip), DEVICE_USER_CODE_GUESSES_PER_ADDRESS);
  }

  /** The code taken by takeGuess was found live and unused: it was no guess. */
  async giveBackGuess(ip: string): Promise<void> {
    await this.#throttle.giveBack(addressBudget(ip), DEVICE_USER_CODE_GUESSES_PER_ADDRESS);
  }

  /**
   * A code looked up was not found live and unused: one from everyone's budget; a wait over 0 means
   * it is empty. One atomic statement per miss, so parallel misses never overshoot it.
   */
  async countMiss(): Promise<ThrottleState> {
    return this.#throttle.takeFromBucket(EVERYONE, DEVICE_USER_CODE_GUESSES_EVERYONE);
  }

  /** Whether this poll of a pending device code keeps to the interval. */
  async pollInTime(deviceCode: string): Promise<boolean> {
    // The device code is a bearer secret: the throttle table keeps only its hash.
    const key = `device_poll:${createHash('sha256').update(deviceCode).digest('base64url')}`;
    return (await this.#throttle.takeFromBucket(key, POLL)).waitSeconds === 0;
  }
}

const EVERYONE = 'device_user_code:everyone';
const addressBudget = (ip: string) => `device_user_code:${sourceOf(ip)}`;
