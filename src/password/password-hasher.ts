import argon2 from 'argon2';
import type { ConcurrencyLimiter } from '../shared/concurrency-limiter.ts';
import { normalizePassword } from './password-policy.ts';

export interface Argon2Params {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/**
 * The parameters of an encoded argon2 hash, as its first four `$` fields: `$argon2id$v=19$m=19456,t=2,p=1`.
 * Two hashes of one shape cost the same to verify.
 */
export type HashShape = string;

/** One argon2 computation, as an observer sees it (tests; how much work a request did, and of what kind). */
export interface HashWork {
  operation: 'hash' | 'verify';
  shape: HashShape;
}

const SHAPE = /^\$(argon2(?:d|i|id))\$v=(\d+)\$m=(\d+),t=(\d+),p=(\d+)(?:\$|$)/;
const TYPES = { argon2d: argon2.argon2d, argon2i: argon2.argon2i, argon2id: argon2.argon2id } as const;
/** The largest parameters a dummy hash is made with: those AKAMON_ARGON2_* accepts (config.ts). */
const LIMITS = { memoryCost: 4 * 1024 * 1024, timeCost: 100, parallelism: 16 };

/** The shape of an encoded hash (or of a shape), or undefined when it is not one argon2 would verify within the limits. */
export function shapeOf(encoded: string): HashShape | undefined {
  const match = SHAPE.exec(encoded);
  if (!match) return undefined;
  const [, , , m, t, p] = match.map(Number);
  if (m > LIMITS.memoryCost || t > LIMITS.timeCost || p > LIMITS.parallelism) return undefined;
  return `$${match[1]}$v=${match[2]}$m=${m},t=${t},p=${p}`;
}

/** What a dummy hash of this shape is made with. */
function optionsOf(shape: HashShape) {
  const [, type, version, m, t, p] = SHAPE.exec(shape)!;
  return { type: TYPES[type as keyof typeof TYPES], version: Number(version), memoryCost: Number(m), timeCost: Number(t), parallelism: Number(p) };
}

/**
 * argon2id hashing behind a concurrency cap; rehash is reported when parameters change. For a
 * check whose answer is already known (an account that does not exist), `verifyLike` spends the
 * work of verifying a hash of a given shape, so that the refusal takes as long as a real one.
 */
export class PasswordHasher {
  readonly #params: Argon2Params;
  readonly #limiter: ConcurrencyLimiter;
  /** What the timing equaliser verifies against, one per shape asked for (a handful: see hash-census.ts). */
  readonly #dummies = new Map<HashShape, Promise<string>>();
  readonly #observers = new Set<(work: HashWork) => void>();
  /** The shape of the hashes made now. */
  readonly currentShape: HashShape;

  constructor(params: Argon2Params, limiter: ConcurrencyLimiter) {
    this.#params = params;
    this.#limiter = limiter;
    this.currentShape = `$argon2id$v=19$m=${params.memoryCost},t=${params.timeCost},p=${params.parallelism}`;
  }

  hash(password: string): Promise<string> {
    this.#report('hash', this.currentShape);
    return this.#limiter.run(() => argon2.hash(normalizePassword(password), { type: argon2.argon2id, ...this.#params }));
  }

  async verify(hash: string, password: string): Promise<{ ok: boolean; needsRehash: boolean }> {
    this.#report('verify', shapeOf(hash) ?? 'unknown');
    const ok = await this.#limiter.run(() => argon2.verify(hash, normalizePassword(password)));
    return { ok, needsRehash: ok && argon2.needsRehash(hash, this.#params) };
  }

  /**
   * The work of verifying `password` against a hash shaped like `like` (a stored hash, or a shape),
   * with the answer thrown away. A shape not yet prepared is made first (one hash more): call
   * `prepare` off the request path for the shapes requests will ask for.
   */
  async verifyLike(like: string, password: string): Promise<void> {
    await this.verify(await this.#dummy(shapeOf(like) ?? this.currentShape), password);
  }

  /** Makes the dummy hashes of these shapes now, which also starts libuv's worker threads. */
  async prepare(shapes: readonly HashShape[]): Promise<void> {
    await Promise.all(shapes.map((shape) => this.#dummy(shape)));
  }

  /** Hears every hash and verification from now on; returns how to stop. */
  observe(listener: (work: HashWork) => void): () => void {
    this.#observers.add(listener);
    return () => this.#observers.delete(listener);
  }

  #dummy(shape: HashShape): Promise<string> {
    let dummy = this.#dummies.get(shape);
    if (!dummy) {
      dummy = argon2.hash('akamon-timing-equaliser', optionsOf(shape));
      // A failed preparation is tried again next time rather than remembered.
      dummy.catch(() => this.#dummies.delete(shape));
      this.#dummies.set(shape, dummy);
    }
    return dummy;
  }

  #report(operation: HashWork['operation'], shape: HashShape): void {
    for (const listener of this.#observers) listener({ operation, shape });
  }
}
