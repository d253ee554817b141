import { isIPv6 } from 'node:net';
import { RetryLaterError } from '../shared/errors.ts';
import type { LoginThrottle } from './login-throttle.ts';

/** An address made as many records as it may in this window: 429 with Retry-After (error map: rate_limited). */
export class AnonymousCapError extends RetryLaterError {
  constructor(retryAfterSeconds: number) {
    super('rate_limited', 'too many sign-ins, logouts and recoveries were begun from this address; try again later', retryAfterSeconds);
  }
}

/**
 * The unit a caller is counted by: its IPv4 address, or the /64 network of its IPv6 address. A
 * /64 is what one subscriber or one LAN gets, so counting single IPv6 addresses would give each
 * caller 2^64 fresh budgets.
 */
export function sourceOf(ip: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped) return mapped[1];
  const address = ip.split('%')[0];
  if (!isIPv6(address)) return ip;
  const [head, tail] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  // An embedded IPv4 tail fills two groups; only the first four groups matter here.
  const missing = 8 - left.length - right.length - (right.at(-1)?.includes('.') ? 1 : 0);
  const groups = tail === undefined ? left : [...left, ...Array<string>(missing).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((group) => parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}

export interface AnonymousCapSettings {
  readonly perAddress: number;
  readonly windowSeconds: number;
}

/**
 * What a caller can make Akamon store without signing in (an interaction for each sign-in begun, a
 * session for a logout without a sign-in, a password-reset or identity-verification flow) is
 * counted per source before it is stored, in one budget per address and window, across nodes (in
 * the throttle table). Everything counted is also short-lived, so what one source can keep stored
 * at any time is bounded by the cap times the lifetimes.
 */
export class AnonymousCap {
  readonly #throttle: LoginThrottle;
  readonly #settings: AnonymousCapSettings;

  constructor(throttle: LoginThrottle, settings: AnonymousCapSettings) {
    this.#throttle = throttle;
    this.#settings = settings;
  }

  /** Counts one record about to be stored for a caller at `ip`; throws AnonymousCapError over the cap. */
  async take(ip: string): Promise<void> {
    const { perAddress, windowSeconds } = this.#settings;
    const state = await this.#throttle.countInWindow(`anonymous:${sourceOf(ip)}`, perAddress, windowSeconds);
    if (state.waitSeconds > 0) throw new AnonymousCapError(state.waitSeconds);
  }
}
