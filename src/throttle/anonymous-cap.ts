import { RetryLaterError } from '../shared/errors.ts';
import type { Bucket, LoginThrottle } from './login-throttle.ts';
import { sourceOf } from './source.ts';

/** An address made records faster than its budget refills: 429 with Retry-After (error map: rate_limited). */
export class AnonymousCapError extends RetryLaterError {
  constructor(retryAfterSeconds: number) {
    super('rate_limited', 'too many sign-ins, logouts and recoveries were begun from this address; try again later', retryAfterSeconds);
  }
}

/** All addresses together reached the ceiling of stored anonymous records: 503 with Retry-After (error map: anonymous_ceiling). */
export class AnonymousCeilingError extends RetryLaterError {
  constructor(retryAfterSeconds: number) {
    super('anonymous_ceiling', 'too many sign-ins, logouts and recoveries were begun from everywhere; try again in a moment', retryAfterSeconds);
  }
}

export interface AnonymousCapSettings {
  /** Records one source may make per `windowSeconds`, and at most at once. */
  readonly perAddress: number;
  readonly windowSeconds: number;
  /** Records all sources together may keep stored at once (at least 2). */
  readonly maxStored: number;
  /** The longest a counted record stays stored: the longest lifetime, plus the sweep's interval. */
  readonly lifetimeSeconds: number;
}

/** The global budget: half the ceiling at once, the other half spread over one lifetime. */
export function ceilingBucket({ maxStored, lifetimeSeconds }: AnonymousCapSettings): Bucket {
  const burst = Math.floor(maxStored / 2);
  return { burst, refillSeconds: lifetimeSeconds / (maxStored - burst) };
}

/**
 * What a caller can make Akamon store without signing in (an interaction for each sign-in begun, a
 * session for a logout without a sign-in, a password-reset flow with its captcha challenge, an
 * identity-verification flow, a public client's pushed request) is counted before it is stored,
 * across nodes (in the throttle table), in two budgets that refill steadily:
 * - per source (throttle/source.ts): `perAddress` at once, refilled at `perAddress` per window. A
 *   host that empties it does not shut out the rest of its campus NAT for a window: the budget
 *   refills every fraction of a second, and the host gets no more than that rate for itself;
 * - for everyone: a record counted lives at most `lifetimeSeconds`, and the global budget lets at
 *   most `maxStored` be made in any such span (ceilingBucket), so no number of sources can keep more
 *   than `maxStored` stored at once.
 * The source is charged first, in the same statement, so a source over its own budget never spends the global one.
 */
export class AnonymousCap {
  readonly #throttle: LoginThrottle;
  readonly #perSource: Bucket;
  readonly #everyone: Bucket;

  constructor(throttle: LoginThrottle, settings: AnonymousCapSettings) {
    this.#throttle = throttle;
    this.#perSource = { burst: settings.perAddress, refillSeconds: settings.windowSeconds / settings.perAddress };
    this.#everyone = ceilingBucket(settings);
  }

  /** Counts one record about to be stored for a caller at `ip`; throws AnonymousCapError or AnonymousCeilingError over a budget. */
  async take(ip: string): Promise<void> {
    const { refused, state } = await this.#throttle.takeFromBuckets({ name: `anonymous:${sourceOf(ip)}`, bucket: this.#perSource }, { name: 'anonymous:everyone', bucket: this.#everyone });
    if (refused === 'first') throw new AnonymousCapError(state.waitSeconds);
    if (refused === 'second') throw new AnonymousCeilingError(state.waitSeconds);
  }
}
