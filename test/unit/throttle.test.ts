import { describe, expect, test } from '@jest/globals';
import { accountKey, addressKey, ACCOUNT_RULE, ADDRESS_RULE, lockSeconds, type ThrottleRule } from '../../src/throttle/login-throttle.ts';

const RULE: ThrottleRule = { free: 3, baseSeconds: 10, maxSeconds: 100 };

describe('lockSeconds', () => {
  test('no lock below `free` failures', () => {
    for (let failures = 0; failures < RULE.free; failures += 1) expect(lockSeconds(failures, RULE)).toBe(0);
  });

  test('the first lock is baseSeconds, then it doubles', () => {
    expect(lockSeconds(3, RULE)).toBe(10);
    expect(lockSeconds(4, RULE)).toBe(20);
    expect(lockSeconds(5, RULE)).toBe(40);
    expect(lockSeconds(6, RULE)).toBe(80);
  });

  test('is capped at maxSeconds, also for huge counts', () => {
    expect(lockSeconds(7, RULE)).toBe(100);
    expect(lockSeconds(8, RULE)).toBe(100);
    expect(lockSeconds(1000, RULE)).toBe(100);
    expect(lockSeconds(100_000, RULE)).toBe(100);
  });

  test('never decreases as failures grow', () => {
    for (const rule of [RULE, ACCOUNT_RULE, ADDRESS_RULE]) {
      let previous = 0;
      for (let failures = 0; failures <= 200; failures += 1) {
        const seconds = lockSeconds(failures, rule);
        expect(seconds).toBeGreaterThanOrEqual(previous);
        expect(seconds).toBeLessThanOrEqual(rule.maxSeconds);
        previous = seconds;
      }
    }
  });
});

describe('ACCOUNT_RULE', () => {
  test('allows a few typos, then locks from 30 s up to an hour, and stops hard at 100', () => {
    expect(ACCOUNT_RULE.hardStop).toBe(100);
    expect(lockSeconds(ACCOUNT_RULE.free - 1, ACCOUNT_RULE)).toBe(0);
    expect(lockSeconds(ACCOUNT_RULE.free, ACCOUNT_RULE)).toBe(30);
    expect(lockSeconds(ACCOUNT_RULE.free + 1, ACCOUNT_RULE)).toBe(60);
    expect(lockSeconds(ACCOUNT_RULE.free + 2, ACCOUNT_RULE)).toBe(120);
    expect(lockSeconds(99, ACCOUNT_RULE)).toBe(3600);
  });

  test('reaching 100 consecutive failures takes at least 3 days at the fastest', () => {
    // Failure n locks the account for lockSeconds(n); the 100th failure can only happen once the
    // locks after failures 1..99 have all run out. Zero time between attempts is the fastest case.
    const hardStop = ACCOUNT_RULE.hardStop!;
    let seconds = 0;
    for (let failures = 1; failures < hardStop; failures += 1) seconds += lockSeconds(failures, ACCOUNT_RULE);
    // 30+60+...+1920 (7 locks) = 3810, then 88 capped locks of 3600 s.
    expect(seconds).toBe(3810 + 88 * 3600);
    expect(seconds).toBeGreaterThanOrEqual(3 * 86400);
  });

  test('the account rule never forgets, so waiting does not reset the count', () => {
    expect(ACCOUNT_RULE.forgetAfterSeconds).toBeUndefined();
  });
});

describe('ADDRESS_RULE', () => {
  test('is generous for a shared campus address and never blocks for good', () => {
    expect(ADDRESS_RULE.hardStop).toBeUndefined();
    expect(ADDRESS_RULE.free).toBeGreaterThan(ACCOUNT_RULE.free);
    expect(lockSeconds(29, ADDRESS_RULE)).toBe(0);
    expect(lockSeconds(30, ADDRESS_RULE)).toBe(10);
    expect(lockSeconds(31, ADDRESS_RULE)).toBe(20);
    expect(lockSeconds(37, ADDRESS_RULE)).toBe(900); // 10 * 2^7 = 1280, capped
    expect(lockSeconds(500, ADDRESS_RULE)).toBe(900);
  });
});

describe('keys', () => {
  test('account and address keys live in different namespaces', () => {
    expect(accountKey('0123456789')).toBe('account:0123456789');
    expect(addressKey('127.0.0.1')).toBe('address:127.0.0.1');
    expect(accountKey('x')).not.toBe(addressKey('x'));
  });
});
