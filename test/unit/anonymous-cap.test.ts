import { describe, expect, test } from '@jest/globals';
import { sourceOf } from '../../src/throttle/source.ts';
import { ceilingBucket } from '../../src/throttle/anonymous-cap.ts';
import { ANONYMOUS_RECORDS_MAX_STORED } from '../../src/config/defaults.ts';

describe('sourceOf: the unit a caller is counted by in every per-address limit', () => {
  test('an IPv4 address is itself, also when the socket reports it IPv4-mapped', () => {
    expect(sourceOf('198.51.100.7')).toBe('198.51.100.7');
    expect(sourceOf('::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(sourceOf('::FFFF:198.51.100.7')).toBe('198.51.100.7');
  });

  test('every IPv6 address of one /64 is one source, however it is written', () => {
    const one = ['2001:db8:0:7::1', '2001:db8:0:7:ffff:1:2:3', '2001:0db8:0000:0007::abcd', '2001:DB8:0:7:0:0:0:1', '2001:db8::7:1:2:3:4', '2001:db8:0:7::1%eth0'];
    expect(new Set(one.map(sourceOf))).toEqual(new Set(['2001:db8:0:7::/64']));
    expect(sourceOf('2001:db8:0:8::1')).toBe('2001:db8:0:8::/64');
    expect(sourceOf('::1')).toBe('0:0:0:0::/64');
    expect(sourceOf('64:ff9b::198.51.100.7')).toBe('64:ff9b:0:0::/64');
  });

  test('the IPv4-mapped spellings and a port or brackets do not make another source', () => {
    for (const ip of ['::ffff:c633:6407', '0:0:0:0:0:FFFF:198.51.100.7', '198.51.100.7:5678', '[::ffff:198.51.100.7]:443']) expect(sourceOf(ip)).toBe('198.51.100.7');
  });

  test("anything that is not an IP address is one source, and never the caller's text", () => {
    expect(sourceOf('')).toBe('unknown');
    expect(sourceOf('not-an-address')).toBe('unknown');
    expect(sourceOf('x'.repeat(9000))).toBe('unknown');
  });
});

describe('ceilingBucket: the budget of all sources together', () => {
  const settings = { perAddress: 10, windowSeconds: 600, lifetimeSeconds: 3660 };

  test('what it lets be made within one lifetime (all that can be stored at once) is the ceiling', () => {
    for (const maxStored of [2, 3, 20, 101, 500_000]) {
      const { burst, refillSeconds } = ceilingBucket({ ...settings, maxStored });
      expect(burst).toBeGreaterThanOrEqual(1);
      expect(burst + Math.floor(settings.lifetimeSeconds / refillSeconds + 1e-9)).toBe(maxStored);
    }
  });

  test("the default refills fast enough for a campus's morning: some 68 records a second", () => {
    const { burst, refillSeconds } = ceilingBucket({ ...settings, maxStored: ANONYMOUS_RECORDS_MAX_STORED });
    expect(burst).toBe(250_000);
    expect(1 / refillSeconds).toBeGreaterThan(60);
  });
});
