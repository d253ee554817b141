import { createHmac, type KeyObject } from 'node:crypto';
import type { Clock } from '../shared/clock.ts';
import type { HashShape, PasswordHasher } from './password-hasher.ts';

/** How many stored hashes have one shape (the account store counts them). */
export interface ShapeCount {
  shape: HashShape;
  count: number;
}

/**
 * Which argon2 parameters the stored password hashes have, and how many of each: the refusal of an
 * account that does not exist verifies a hash of one of those shapes, so it costs what a real
 * account's check costs, also after AKAMON_ARGON2_* changed and before every account re-hashed at
 * its next sign-in (when stored hashes are a mix of old and new parameters).
 *
 * An unknown Common ID gets a shape drawn with the stored shares, fixed per Common ID by a keyed
 * hash: asked again, it costs the same again (as a real account does), and without the key nobody
 * can tell which shape a given ID will get, so the time taken says nothing about existence. The
 * current parameters come last in the draw: as accounts re-hash, IDs move from old shapes to the
 * current one, the only move real accounts make.
 */
export class HashCensus {
  readonly #count: () => Promise<ShapeCount[]>;
  readonly #hasher: PasswordHasher;
  readonly #key: KeyObject;
  readonly #clock: Clock;
  readonly #refreshMs: number;
  #census: { shapes: ShapeCount[]; total: number; takenAt: number } | undefined;
  #refreshing: Promise<void> | undefined;

  constructor(deps: { count: () => Promise<ShapeCount[]>; hasher: PasswordHasher; key: KeyObject; clock: Clock; refreshSeconds: number }) {
    this.#count = deps.count;
    this.#hasher = deps.hasher;
    this.#key = deps.key;
    this.#clock = deps.clock;
    this.#refreshMs = deps.refreshSeconds * 1000;
  }

  /**
   * Counts the stored shapes again and prepares their dummy hashes before using them, so requests
   * never wait for one. Runs at start-up (warm-up) and then when a census is older than the refresh
   * interval, in the background; concurrent calls share one count.
   */
  refresh(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        const current = this.#hasher.currentShape;
        const counted = (await this.#count()).filter((s) => s.count > 0);
        const shapes = [...counted.filter((s) => s.shape !== current).sort((a, b) => (a.shape < b.shape ? -1 : 1)), ...counted.filter((s) => s.shape === current)];
        await this.#hasher.prepare([...shapes.map((s) => s.shape), current]);
        this.#census = { shapes, total: shapes.reduce((sum, s) => sum + s.count, 0), takenAt: this.#clock.now().getTime() };
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }

  /** The shape the check of this (unknown) Common ID verifies against. */
  async shapeFor(commonId: string): Promise<HashShape> {
    if (!this.#census) await this.refresh();
    const census = this.#census!;
    // A stale census answers now and is recounted behind (a failed recount keeps the old one).
    if (this.#clock.now().getTime() - census.takenAt > this.#refreshMs) this.refresh().catch(() => undefined);
    if (census.total === 0) return this.#hasher.currentShape;
    const point = createHmac('sha256', this.#key).update(commonId).digest().readUIntBE(0, 6) / 2 ** 48;
    let below = 0;
    for (const { shape, count } of census.shapes) {
      below += count / census.total;
      if (point < below) return shape;
    }
    return census.shapes.at(-1)!.shape;
  }
}
