import argon2 from 'argon2';
import type { ConcurrencyLimiter } from '../shared/concurrency-limiter.ts';
import { normalizePassword } from './password-policy.ts';

export interface Argon2Params {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/** argon2id hashing behind a concurrency cap; rehash is reported when parameters change. */
export class PasswordHasher {
  readonly #params: Argon2Params;
  readonly #limiter: ConcurrencyLimiter;
  #dummyHash: Promise<string> | undefined;

  constructor(params: Argon2Params, limiter: ConcurrencyLimiter) {
    this.#params = params;
    this.#limiter = limiter;
  }

  hash(password: string): Promise<string> {
    return this.#limiter.run(() => argon2.hash(normalizePassword(password), { type: argon2.argon2id, ...this.#params }));
  }

  async verify(hash: string, password: string): Promise<{ ok: boolean; needsRehash: boolean }> {
    const ok = await this.#limiter.run(() => argon2.verify(hash, normalizePassword(password)));
    return { ok, needsRehash: ok && argon2.needsRehash(hash, this.#params) };
  }

  /** Makes the timing equaliser's hash now, which also starts libuv's worker threads. */
  async warmUp(): Promise<void> {
    await this.verifyNothing('');
  }

  /** Spends the same time as a real verification, for accounts that do not exist. */
  async verifyNothing(password: string): Promise<void> {
    this.#dummyHash ??= argon2.hash('akamon-timing-equaliser', { type: argon2.argon2id, ...this.#params });
    await this.verify(await this.#dummyHash, password);
  }
}
