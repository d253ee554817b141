import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { LoginThrottle } from '../../src/throttle/login-throttle.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * The refilling budget (LoginThrottle.takeFromBucket) on both databases, with the clock readings
 * given by hand: parallel requests read the clock before they wait their turn for the row, so the
 * statement sees readings out of order. That once started an emptied bucket afresh (an older reading
 * took the stored time for "the clock went back"), and twenty parallel authorization requests from
 * one address stored twice the cap on PostgreSQL.
 */
const BUCKET = { burst: 4, refillSeconds: 10 };
const T0 = Date.parse('2026-12-05T00:00:00Z');

let handle: TestDatabase;
let reading = T0;
let throttle: LoginThrottle;

beforeAll(async () => {
  handle = await createTestDatabase();
  throttle = new LoginThrottle(handle.database.db, { now: () => new Date(reading) });
});
afterAll(async () => {
  await handle.database.close();
});

async function take(name: string, at: number, cost = 1) {
  reading = at;
  return (await throttle.takeFromBucket(name, BUCKET, cost)).waitSeconds;
}

describe('a refilling budget', () => {
  test('holds `burst` uses at once, then one more per refill step', async () => {
    const waits = [];
    for (let i = 0; i < 5; i += 1) waits.push(await take('steady', T0));
    expect(waits).toEqual([0, 0, 0, 0, 10]);
    expect(await take('steady', T0 + 10_000)).toBe(0);
    expect(await take('steady', T0 + 10_000)).toBeGreaterThan(0);
  });

  test('a clock reading older than the one that emptied it is refused, not a fresh bucket', async () => {
    for (let i = 0; i < 4; i += 1) expect(await take('race', T0 + 2_000)).toBe(0);
    // A request that read the clock 2 s earlier reaches the row last.
    expect(await take('race', T0)).toBeGreaterThan(0);
    expect(await take('race', T0 + 1_000)).toBeGreaterThan(0);
    expect(await take('race', T0 + 2_000)).toBeGreaterThan(0);
  });

  test('a clock that went back by less than the whole span keeps the budget empty', async () => {
    for (let i = 0; i < 4; i += 1) expect(await take('short-correction', T0 + 30_000)).toBe(0);
    expect(await take('short-correction', T0)).toBeGreaterThan(0);
  });

  test('a clock that went back by more than the whole span starts the budget afresh', async () => {
    for (let i = 0; i < 4; i += 1) expect(await take('long-correction', T0 + 200_000)).toBe(0);
    const waits = [];
    for (let i = 0; i < 5; i += 1) waits.push(await take('long-correction', T0));
    expect(waits).toEqual([0, 0, 0, 0, 10]);
  });

  test('a costly use counts as several, and more than the bucket as the whole bucket', async () => {
    expect(await take('costly', T0, 3)).toBe(0);
    expect(await take('costly', T0)).toBe(0);
    expect(await take('costly', T0)).toBeGreaterThan(0);
    expect(await take('whole', T0, 100)).toBe(0);
    expect(await take('whole', T0)).toBeGreaterThan(0);
  });
});

describe('two budgets in one statement (the anonymous cap: the source, then everyone)', () => {
  const SMALL = { burst: 2, refillSeconds: 10 };
  const both = (at: number) => {
    reading = at;
    return throttle.takeFromBuckets({ name: 'pair-source', bucket: SMALL }, { name: 'pair-everyone', bucket: BUCKET });
  };

  test('a use over the first budget is refused there and takes nothing from the second', async () => {
    expect(await both(T0)).toEqual({ state: { waitSeconds: 0, blocked: false } });
    expect(await both(T0)).toEqual({ state: { waitSeconds: 0, blocked: false } });
    for (let i = 0; i < 5; i += 1) expect(await both(T0)).toMatchObject({ refused: 'first', state: { waitSeconds: 10 } });
    // The second budget gave two of its four uses: two are left.
    expect(await take('pair-everyone', T0)).toBe(0);
    expect(await take('pair-everyone', T0)).toBe(0);
    expect(await take('pair-everyone', T0)).toBeGreaterThan(0);
  });

  test('a use the first budget allows and the second refuses names the second', async () => {
    reading = T0 + 60_000;
    expect((await throttle.takeFromBuckets({ name: 'pair-fresh', bucket: SMALL }, { name: 'pair-everyone', bucket: BUCKET })).refused).toBeUndefined();
    for (let i = 0; i < 3; i += 1) await take('pair-everyone', T0 + 60_000);
    expect(await throttle.takeFromBuckets({ name: 'pair-other', bucket: SMALL }, { name: 'pair-everyone', bucket: BUCKET })).toMatchObject({ refused: 'second' });
  });
});
