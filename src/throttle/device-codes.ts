import { createHash } from 'node:crypto';
import { DEVICE_POLL_MIN_SECONDS, DEVICE_USER_CODE_GUESSES_EVERYONE, DEVICE_USER_CODE_GUESSES_PER_ADDRESS } from '../config/defaults.ts';
import type { Bucket, LoginThrottle, ThrottleState } from './login-throttle.ts';
import { sourceOf } from './source.ts';

/** Polls of one device code: one per DEVICE_POLL_MIN_SECONDS, no burst. */
const POLL: Bucket = { burst: 1, refillSeconds: DEVICE_POLL_MIN_SECONDS };

/**
 * The limits of the device authorization grant (RFC 8628 section 5), counted in the throttle table
 * so that they hold across nodes:
 * - user codes are short enough to type, so they can be guessed: every code entered takes one from
 *   its source address's budget and one from everyone's before it is looked up, and one that was
 *   found (live, expired or used) is given back. Only wrong codes stay counted, and parallel
 *   guesses cannot pass a budget together. The address is charged first, so an address over its
 *   own budget never spends everyone's;
 * - a device polling for its token faster than the interval is told to slow down.
 */
export class DeviceCodeLimits {
  readonly #throttle: LoginThrottle;

  constructor(throttle: LoginThrottle) {
    this.#throttle = throttle;
  }

  /** Counts a user code about to be looked up; a wait over 0 refuses it. */
  async takeGuess(ip: string): Promise<ThrottleState> {
    const address = await this.#throttle.takeFromBucket(addressBudget(ip), DEVICE_USER_CODE_GUESSES_PER_ADDRESS);
    if (address.waitSeconds > 0) return address;
    const everyone = await this.#throttle.takeFromBucket(EVERYONE, DEVICE_USER_CODE_GUESSES_EVERYONE);
    if (everyone.waitSeconds > 0) await this.#throttle.giveBack(addressBudget(ip), DEVICE_USER_CODE_GUESSES_PER_ADDRESS);
    return everyone;
  }

  /** The code taken by takeGuess was found: it was no guess. */
  async giveBackGuess(ip: string): Promise<void> {
    await this.#throttle.giveBack(addressBudget(ip), DEVICE_USER_CODE_GUESSES_PER_ADDRESS);
    await this.#throttle.giveBack(EVERYONE, DEVICE_USER_CODE_GUESSES_EVERYONE);
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
