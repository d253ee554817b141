import { describe, expect, test } from '@jest/globals';
import { createSecretKey } from 'node:crypto';
import { HashCensus, type ShapeCount } from '../../src/password/hash-census.ts';
import { PasswordHasher, shapeOf, type HashWork } from '../../src/password/password-hasher.ts';
import { ConcurrencyLimiter } from '../../src/shared/concurrency-limiter.ts';

/**
 * Guards issue 13 point 5 (see also test/integration/unknown-account-hashing.test.ts): an unknown
 * Common ID is checked against a hash shaped like the stored ones, drawn with their shares and
 * fixed per ID, so its refusal costs what a real account's costs while hashes are a mix of old and
 * new argon2 parameters.
 */
const OLD = '$argon2id$v=19$m=1024,t=1,p=1';
const NEW = '$argon2id$v=19$m=2048,t=2,p=1';
const hasher = new PasswordHasher({ memoryCost: 2048, timeCost: 2, parallelism: 1 }, new ConcurrencyLimiter(2, 100));
const clock = { offsetMs: 0, now: () => new Date(Date.now() + clock.offsetMs) };

function census(counts: ShapeCount[], key = createSecretKey(Buffer.alloc(32, 7))) {
  const source = { calls: 0, counts };
  const made = new HashCensus({
    count: async () => {
      source.calls += 1;
      return source.counts;
    },
    hasher,
    key,
    clock,
    refreshSeconds: 600,
  });
  return { census: made, source };
}

const ids = Array.from({ length: 2000 }, (_, i) => String(1_000_000_000 + i * 7919));

async function draw(made: HashCensus): Promise<Map<string, string>> {
  const shapes = new Map<string, string>();
  for (const id of ids) shapes.set(id, await made.shapeFor(id));
  return shapes;
}

describe('the shape an unknown Common ID is checked with', () => {
  test('is the current one before any account exists', async () => {
    expect(hasher.currentShape).toBe(NEW);
    expect(await census([]).census.shapeFor('0123456789')).toBe(NEW);
  });

  test('follows the stored shares, the same for one ID every time, and unpredictable without the key', async () => {
    const { census: made } = census([
      { shape: OLD, count: 3 },
      { shape: NEW, count: 1 },
    ]);
    const first = await draw(made);
    const old = [...first.values()].filter((s) => s === OLD).length / ids.length;
    expect(old).toBeGreaterThan(0.7);
    expect(old).toBeLessThan(0.8);
    expect(await draw(made)).toEqual(first);
    const otherKey = await draw(
      census(
        [
          { shape: OLD, count: 3 },
          { shape: NEW, count: 1 },
        ],
        createSecretKey(Buffer.alloc(32, 8)),
      ).census,
    );
    const differ = ids.filter((id) => otherKey.get(id) !== first.get(id)).length / ids.length;
    expect(differ).toBeGreaterThan(0.25);
  });

  test('as accounts re-hash, an ID only moves from an old shape to the current one, as a real account does', async () => {
    const before = await draw(
      census([
        { shape: OLD, count: 3 },
        { shape: NEW, count: 1 },
      ]).census,
    );
    const after = await draw(
      census([
        { shape: OLD, count: 1 },
        { shape: NEW, count: 3 },
      ]).census,
    );
    expect(ids.filter((id) => before.get(id) === NEW && after.get(id) === OLD)).toEqual([]);
    expect(ids.filter((id) => before.get(id) === OLD && after.get(id) === NEW).length).toBeGreaterThan(ids.length * 0.4);
  });

  test('is recounted in the background once the census is older than the refresh interval', async () => {
    const { census: made, source } = census([{ shape: OLD, count: 5 }]);
    expect(await made.shapeFor('0123456789')).toBe(OLD);
    expect(source.calls).toBe(1);
    source.counts = [{ shape: NEW, count: 5 }];
    expect(await made.shapeFor('0123456789')).toBe(OLD);
    clock.offsetMs = 601_000;
    try {
      // The stale census answers at once; the recount applies to the next check.
      expect(await made.shapeFor('0123456789')).toBe(OLD);
      await made.refresh();
      expect(source.calls).toBeGreaterThanOrEqual(2);
      expect(await made.shapeFor('0123456789')).toBe(NEW);
    } finally {
      clock.offsetMs = 0;
    }
  });
});

describe('verifyLike', () => {
  test('verifies one hash of the given shape, prepared beforehand, whatever the password', async () => {
    await hasher.prepare([OLD]);
    const work: HashWork[] = [];
    const stop = hasher.observe((w) => work.push(w));
    try {
      await hasher.verifyLike(OLD, 'anything at all');
      await hasher.verifyLike(`${OLD}$c2FsdHNhbHRzYWx0$aGFzaA`, '');
    } finally {
      stop();
    }
    expect(work).toEqual([
      { operation: 'verify', shape: OLD },
      { operation: 'verify', shape: OLD },
    ]);
  });

  test('stays within the configured limits: an absurd or foreign stored hash costs the current shape', () => {
    expect(shapeOf('$argon2id$v=19$m=999999999,t=1,p=1$salt$hash')).toBeUndefined();
    expect(shapeOf('$2b$12$abcdefghijklmnopqrstuv')).toBeUndefined();
    expect(shapeOf(`${OLD}$salt$hash`)).toBe(OLD);
  });
});
