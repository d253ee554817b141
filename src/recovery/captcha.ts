import { createChallenge, verifySolution } from 'altcha-lib/v1';
import { CAPTCHA_CHALLENGE_SECONDS, CAPTCHA_MAX_NUMBER, CAPTCHA_PAYLOAD_MAX_BYTES } from '../config/defaults.ts';

type Challenge = Awaited<ReturnType<typeof createChallenge>>;

/**
 * A proof-of-work captcha (ALTCHA): the browser spends a moment of computation, no outside
 * service is asked and nothing needs to be read or clicked. It makes many automated attempts
 * expensive; the per-address limits do the rest.
 */
export class Captcha {
  readonly #key: string;
  readonly #maxNumber: number;

  constructor(key: Buffer, maxNumber = CAPTCHA_MAX_NUMBER) {
    this.#key = key.toString('base64url');
    this.#maxNumber = maxNumber;
  }

  challenge(): Promise<Challenge> {
    return createChallenge({ hmacKey: this.#key, maxNumber: this.#maxNumber, expires: new Date(Date.now() + CAPTCHA_CHALLENGE_SECONDS * 1000) });
  }

  /** The solution must be signed by us, unexpired, and for the challenge this flow was given. */
  async verify(payload: unknown, expectedChallenge: string): Promise<boolean> {
    if (typeof payload !== 'string' || payload.length > CAPTCHA_PAYLOAD_MAX_BYTES) return false;
    try {
      const decoded = JSON.parse(Buffer.from(payload, 'base64').toString('utf8')) as { challenge?: unknown };
      if (decoded.challenge !== expectedChallenge) return false;
      return await verifySolution(payload, this.#key, true);
    } catch {
      return false;
    }
  }
}
